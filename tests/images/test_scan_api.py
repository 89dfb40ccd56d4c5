"""The scan API: `POST /api/v1/image-versions/{id}/scan/` (202 + job) and
`GET /api/v1/image-versions/{id}/sbom/`, with bad input and the permission matrix."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from images.choices import SbomSubject, ScanState
from images.models import BaseImage, ImageVersion, Registry
from images.scanning.normalize import normalize_packages
from images.services.scans import image_version_scan_attach, sbom_record
from portal.choices import Role
from portal.models import AuditEntry, Job, Team
from tests.images.scan_fixtures import (  # noqa: F401
    scan_settings_fixture,
    syft_go_document_fixture,
    syft_go_result_fixture,
)

pytestmark = pytest.mark.django_db

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


@pytest.fixture
def world(scan_settings, make_user, make_token, service_team, platform_team, admin_user):
    registry = Registry.objects.create(name="r", url="http://127.0.0.1:5999", tls_verify=False)
    image = BaseImage.objects.create(
        name="runtime/payments-base",
        kind="runtime",
        os_family="debian",
        os_version="12",
        owner_team=service_team,  # the service team maintains this base image
        registry=registry,
    )
    version = ImageVersion.objects.create(
        base_image=image, registry=registry, tag="1", tags=["1"], digest="sha256:" + "1" * 64
    )
    other_team = Team.objects.create(name="others")
    users = {
        "viewer": make_user("v", service_team, Role.VIEWER),
        "developer": make_user("d", service_team, Role.DEVELOPER),
        "maintainer": make_user("m", service_team, Role.MAINTAINER),
        "admin": admin_user,
    }
    tokens = {
        "token_write": make_token(service_team, ["images:write"]),
        "token_read": make_token(service_team, ["images:read"]),
        "token_other": make_token(other_team, ["images:read", "images:write"]),
    }
    return {"image": image, "version": version, "users": users, "tokens": tokens}


def client_for(caller: str, world) -> APIClient:
    client = APIClient()
    if caller in world["users"]:
        client.force_login(world["users"][caller])
    elif caller in world["tokens"]:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['tokens'][caller]}")
    return client


def scanned(version: ImageVersion, syft_go_result) -> ImageVersion:
    """Give `version` a real SBOM (syft on its own Go binary) without a registry."""
    sbom = sbom_record(
        digest=version.digest,
        subject=SbomSubject.IMAGE,
        raw=syft_go_result.raw,
        document=syft_go_result.document,
        identities=normalize_packages(syft_go_result.document, distro_ecosystem=""),
        abi=None,
        job_id=None,
    )
    return image_version_scan_attach(version_id=version.pk, sbom=sbom)


#                 anon vie  dev  mai  adm  tkw  tkr  oth
SCAN_EXPECT = (401, 403, 403, 202, 202, 202, 403, 403)
SBOM_EXPECT = (401, 200, 200, 200, 200, 403, 200, 200)


@pytest.mark.parametrize(
    ("caller", "expect"), list(zip(CALLERS, SCAN_EXPECT, strict=True)), ids=CALLERS
)
def test_scan_permission_matrix(world, caller, expect):
    version = world["version"]
    Job.objects.filter(kind="images.scan").delete()
    response = client_for(caller, world).post(f"/api/v1/image-versions/{version.pk}/scan/")
    assert response.status_code == expect, response.content
    if expect == 202:
        body = response.json()
        assert body["job"]["kind"] == "images.scan"
        assert body["job"]["state"] == "queued"
        assert body["version"] == {"id": version.pk, "digest": version.digest}
        assert response["Location"] == f"/api/v1/jobs/{body['job']['id']}/"
        assert ImageVersion.objects.get(pk=version.pk).scan_state == ScanState.QUEUED
        assert AuditEntry.objects.filter(action="image_version.scan").count() == 1
    else:
        assert not Job.objects.filter(kind="images.scan").exists()
        assert ImageVersion.objects.get(pk=version.pk).scan_state == ScanState.UNSCANNED
        if expect == 403:
            assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("caller", "expect"), list(zip(CALLERS, SBOM_EXPECT, strict=True)), ids=CALLERS
)
def test_sbom_permission_matrix(world, syft_go_result, caller, expect):
    version = scanned(world["version"], syft_go_result)
    response = client_for(caller, world).get(f"/api/v1/image-versions/{version.pk}/sbom/")
    assert response.status_code == expect
    if expect == 200:
        assert response["Content-Type"] == "application/vnd.cyclonedx+json"


def test_scan_twice_returns_the_same_live_job(world):
    client = client_for("maintainer", world)
    path = f"/api/v1/image-versions/{world['version'].pk}/scan/"
    first = client.post(path)
    second = client.post(path, {"force": True}, format="json")
    assert first.status_code == second.status_code == 202
    assert first.json()["job"]["id"] == second.json()["job"]["id"]
    assert Job.objects.filter(kind="images.scan").count() == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/api/v1/image-versions/999999/scan/", None, 404),
        ("post", "/api/v1/image-versions/abc/scan/", None, 404),
        ("post", "/api/v1/image-versions/{id}/scan/", {"force": "maybe"}, 400),
        ("post", "/api/v1/image-versions/{id}/scan/?force=2", None, 400),
        # the wrong method: the portal refuses any operation a view declares no scope for
        ("get", "/api/v1/image-versions/{id}/scan/", None, 403),
        ("get", "/api/v1/image-versions/999999/sbom/", None, 404),
        ("get", "/api/v1/image-versions/{id}/sbom/", None, 404),  # not scanned
        ("get", "/api/v1/image-versions/{id}/sbom/?format=syft-json", None, 404),
        ("get", "/api/v1/image-versions/{id}/sbom/?format=spdx-json", None, 400),
        ("get", "/api/v1/image-versions/{id}/sbom/?format=" + "x" * 5000, None, 400),
        ("post", "/api/v1/image-versions/{id}/sbom/", None, 403),
    ],
)
def test_bad_input(world, method, path, body, status):
    client = client_for("admin", world)
    path = path.format(id=world["version"].pk)
    response = (
        getattr(client, method)(path, body, format="json")
        if body
        else getattr(client, method)(path)
    )
    assert response.status_code == status, response.content
    payload = response.json()
    assert payload["detail"] and payload["code"]
    assert not Job.objects.filter(kind="images.scan").exists()


def test_unscanned_and_failed_sbom_answers_say_why(world):
    version = world["version"]
    ImageVersion.objects.filter(pk=version.pk).update(
        scan_state=ScanState.FAILED, scan_error="skopeo copy failed"
    )
    response = client_for("viewer", world).get(f"/api/v1/image-versions/{version.pk}/sbom/")
    assert response.status_code == 404
    assert "not been scanned" in response.json()["detail"]
    assert "failed" in response.json()["detail"]


def test_a_missing_sbom_blob_is_a_404_not_a_500(world, syft_go_result, settings, tmp_path):
    version = scanned(world["version"], syft_go_result)
    settings.STORAGES = {
        **settings.STORAGES,
        "sboms": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "elsewhere")},
        },
    }
    response = client_for("viewer", world).get(f"/api/v1/image-versions/{version.pk}/sbom/")
    assert response.status_code == 404
    assert "missing from storage" in response.json()["detail"]


def test_the_schedule_scans_every_approved_version(world, settings):
    from images.tasks import scan_approved_versions

    entry = settings.CELERY_BEAT_SCHEDULE["scan-approved-images"]
    assert entry["task"] == "images.tasks.scan_approved_versions"
    assert entry["schedule"].total_seconds() == settings.PORTAL_SCAN_INTERVAL_HOURS * 3600
    assert scan_approved_versions() == 0  # the only version is a candidate
    ImageVersion.objects.filter(pk=world["version"].pk).update(state="approved")
    assert scan_approved_versions() == 1
    assert scan_approved_versions() == 0  # its scan is still queued: not a second one
    job = Job.objects.get(kind="images.scan")
    assert job.params == {"version_id": world["version"].pk, "force": False}
    assert job.queue == "scans"
