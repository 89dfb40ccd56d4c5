"""Binary scans: syft on an uploaded binary's stored file. syft is itself a Go binary with a
module list, so uploading it as a service's binary gives real Go module packages."""

from __future__ import annotations

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from rest_framework.test import APIClient

from deployments.models import BinaryVersion, Service
from deployments.services import binary_version_scan_start
from images.choices import SbomSubject, ScanState
from images.models import Package, Sbom
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.choices import Role
from portal.jobs import job_execute
from portal.models import AuditEntry, Job, Team
from tests.deployments.test_upload_api import post_file
from tests.images.scan_fixtures import scan_settings_fixture, syft_go_binary  # noqa: F401

pytestmark = pytest.mark.django_db
URL = "/api/v1/services/orders/binaries/"


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="go")


@pytest.fixture
def uploaded(
    scan_settings,
    binary_store_dir,
    orders,
    token_client,
    service_team,
    django_capture_on_commit_callbacks,
):
    """syft's own binary uploaded through the API as orders 1.0.0 (its scan job queued on
    the upload's commit)."""
    uploader = token_client(service_team, ["binaries:write", "binaries:read"])
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(uploader, syft_go_binary(), url=URL)
    assert response.status_code == 201, response.content
    return BinaryVersion.objects.get(pk=response.json()["id"])


def test_an_upload_is_scanned_and_its_go_modules_are_packages(uploaded):
    job = Job.objects.get(kind="deployments.scan_binary")
    assert job.params["binary_id"] == uploaded.pk and job.queue == "scans"
    uploaded.refresh_from_db()
    assert uploaded.scan_state == ScanState.QUEUED
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    uploaded.refresh_from_db()
    assert uploaded.scan_state == ScanState.SCANNED and uploaded.scanned_at is not None
    sbom = uploaded.sbom
    assert (sbom.subject, sbom.digest) == (SbomSubject.BINARY, f"sha256:{uploaded.sha256}")
    packages = {p.name: p for p in Package.objects.filter(sboms=sbom)}
    assert len(packages) > 100
    assert all(p.ecosystem == "Go" and p.kind == "go-module" for p in packages.values())
    assert packages["github.com/anchore/syft"].version == "1.18.1"  # OSV's Go: no "v"
    assert packages["stdlib"].version.startswith("1.23")
    assert "golang.org/x/net" in packages
    assert not hasattr(sbom, "abi") or sbom.abi is None
    job.refresh_from_db()
    assert "syft:" in job.log and "match:" in job.log
    assert AuditEntry.objects.filter(action="binary_version.scan").exists()

    # the same bytes again: the SBOM is reused, no second Sbom
    again = binary_version_scan_start(binary_id=uploaded.pk, actor=Actor.system_actor("t"))
    assert job_execute(again.pk) == "succeeded"
    again.refresh_from_db()
    assert again.result["reused"] is True and Sbom.objects.count() == 1


def test_binary_sbom_download(uploaded, api, make_user, service_team):
    api.force_login(make_user("viewer", service_team, Role.VIEWER))
    assert api.get(f"/api/v1/binaries/{uploaded.pk}/sbom/").status_code == 404
    job = Job.objects.get(kind="deployments.scan_binary")
    assert job_execute(job.pk) == "succeeded"
    uploaded.refresh_from_db()
    response = api.get(f"/api/v1/binaries/{uploaded.pk}/sbom/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="orders-1.0.0-x86_64-')
    shown = api.get(f"/api/v1/binaries/{uploaded.pk}/").json()
    assert shown["scan_state"] == "scanned" and shown["sbom"] == uploaded.sbom_id
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(response.content.decode()) is None
    response = api.get(f"/api/v1/binaries/{uploaded.pk}/sbom/?format=syft-json")
    source = json.loads(response.content)["source"]
    assert (source["type"], source["name"], source["version"]) == ("file", "orders", "1.0.0")
    assert api.get(f"/api/v1/binaries/{uploaded.pk}/sbom/?format=xml").status_code == 400


def test_a_purged_binary_is_not_scanned(uploaded):
    BinaryVersion.objects.filter(pk=uploaded.pk).update(state="purged")
    with pytest.raises(Conflict):
        binary_version_scan_start(binary_id=uploaded.pk, actor=Actor.system_actor("t"))


def test_a_failed_binary_scan_says_why(uploaded, settings):
    settings.PORTAL_SYFT_BINARY = "/nonexistent/syft"
    job = Job.objects.get(kind="deployments.scan_binary")
    assert job_execute(job.pk) == "failed"
    uploaded.refresh_from_db()
    assert uploaded.scan_state == ScanState.FAILED
    assert "syft is not installed" in uploaded.scan_error


CALLERS = (
    "anon",
    "viewer",
    "developer",
    "maintainer",
    "admin",
    "token_write",
    "token_read",
    "token_other",
)
#               anon vie  dev  mai  adm  tkw  tkr  oth
SCAN_EXPECT = (401, 403, 202, 202, 403, 202, 403, 404)
SBOM_EXPECT = (401, 404, 404, 404, 404, 403, 404, 404)  # not scanned yet: 404 to readers


@pytest.fixture
def callers(make_user, make_token, service_team, admin_user):
    other = Team.objects.create(name="others")
    return {
        "users": {
            "viewer": make_user("v", service_team, Role.VIEWER),
            "developer": make_user("d", service_team, Role.DEVELOPER),
            "maintainer": make_user("m", service_team, Role.MAINTAINER),
            "admin": admin_user,
        },
        "tokens": {
            "token_write": make_token(service_team, ["binaries:write"]),
            "token_read": make_token(service_team, ["binaries:read"]),
            "token_other": make_token(other, ["binaries:read", "binaries:write"]),
        },
    }


def _client(caller, callers) -> APIClient:
    client = APIClient()
    if caller in callers["users"]:
        client.force_login(callers["users"][caller])
    elif caller in callers["tokens"]:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {callers['tokens'][caller]}")
    return client


@pytest.mark.parametrize(
    ("caller", "scan", "sbom"),
    list(zip(CALLERS, SCAN_EXPECT, SBOM_EXPECT, strict=True)),
    ids=CALLERS,
)
def test_binary_scan_permission_matrix(uploaded, callers, caller, scan, sbom):
    Job.objects.filter(kind="deployments.scan_binary").delete()
    client = _client(caller, callers)
    response = client.post(f"/api/v1/binaries/{uploaded.pk}/scan/")
    assert response.status_code == scan, response.content
    assert Job.objects.filter(kind="deployments.scan_binary").exists() == (scan == 202)
    if scan == 202:
        assert response.json()["job"]["kind"] == "deployments.scan_binary"
    assert client.get(f"/api/v1/binaries/{uploaded.pk}/sbom/").status_code == sbom


def test_binary_scan_bad_input(uploaded, callers):
    client = _client("developer", callers)
    assert client.post("/api/v1/binaries/999999/scan/").status_code == 404
    assert client.post("/api/v1/binaries/x/scan/").status_code == 404
    response = client.post(f"/api/v1/binaries/{uploaded.pk}/scan/?force=sometimes")
    assert response.status_code == 400 and "force" in response.json()["detail"]
    BinaryVersion.objects.filter(pk=uploaded.pk).update(state="purged")
    response = client.post(f"/api/v1/binaries/{uploaded.pk}/scan/")
    assert response.status_code == 409 and response.json()["code"] == "purged"
