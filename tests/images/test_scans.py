"""The scan job on the real bookworm image of the test registry, with the real syft.

The image is copied once by digest (skopeo, plain HTTP), syft reads the copy, its packages
are normalised and deduplicated, the same copy's layers give the ABI facts.
"""

from __future__ import annotations

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from images.choices import SbomSubject, ScanState
from images.models import BaseImage, ImageAbi, ImageVersion, Package, Sbom, SbomPackage
from images.scanning.normalize import normalize_packages
from images.scanning.store import sbom_read
from images.services import image_version_record
from images.services.scans import (
    image_version_scan_start,
    image_versions_scan_approved,
    packages_get_or_create,
    sbom_record,
)
from portal.actors import Actor
from portal.jobs import job_create, job_execute
from portal.models import AuditEntry, Job
from tests.images import test_builds as builds
from tests.images.scan_fixtures import scan_settings_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def scan_env(scan_settings, running_registry, debian_base_image, platform_team):
    registry, image, version = builds.record_debian_base(
        running_registry, debian_base_image, platform_team
    )
    return {"registry": registry, "image": image, "version": version}


def api_client_of_admin():
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(get_user_model().objects.create_superuser("root-viewer"))
    return client


def run_scan(version_id: int, *, force: bool = False) -> Job:
    job = image_version_scan_start(
        version_id=version_id, actor=Actor.system_actor("test"), force=force
    )
    state = job_execute(job.pk)
    job.refresh_from_db()
    assert state == "succeeded", job.error
    return job


def test_scanning_the_bookworm_image(scan_env):
    version = scan_env["version"]
    job = run_scan(version.pk)
    version.refresh_from_db()
    assert version.scan_state == ScanState.SCANNED
    assert version.scan_error == ""
    assert version.scanned_at is not None
    sbom = version.sbom
    assert sbom.digest == version.digest
    assert sbom.subject == SbomSubject.IMAGE
    assert (sbom.distro_id, sbom.distro_version, sbom.ecosystem) == ("debian", "12", "Debian:12")
    assert sbom.syft_version == "1.18.1"
    assert sbom.scan_job_id == job.pk

    packages = {p.name: p for p in Package.objects.filter(sboms=sbom)}
    assert len(packages) == sbom.package_count > 50
    libc6 = packages["libc6"]
    assert (libc6.ecosystem, libc6.source_name, libc6.arch) == ("Debian:12", "glibc", "amd64")
    assert libc6.version.startswith("2.36-")
    assert libc6.source_version == libc6.version  # no source version: the binary's
    assert packages["perl-base"].source_name == "perl"
    assert packages["bash"].source_name == "bash"  # no Source: its own name
    assert all(p.ecosystem == "Debian:12" and p.kind == "deb" for p in packages.values())
    assert libc6.purl.startswith("pkg:deb/debian/libc6@")

    # the stored syft-json is the canonical form: it keeps dpkg's source and the file lists
    raw = sbom_read(sbom.blob_name, expected_sha256=sbom.blob_sha256)
    document = json.loads(raw)
    assert document["source"]["version"] == version.digest
    assert document["source"]["name"].endswith("/runtime/debian")
    libc_artifact = next(a for a in document["artifacts"] if a["name"] == "libc6")
    assert libc_artifact["metadata"]["source"] == "glibc"
    assert libc_artifact["metadata"]["files"]

    abi = ImageAbi.objects.get(sbom=sbom)
    assert (abi.libc_kind, abi.libc_version) == ("glibc", "2.36")
    assert "/lib64/ld-linux-x86-64.so.2" in abi.loader_paths
    libc = next(lib for lib in abi.libraries if lib["soname"] == "libc.so.6")
    assert {"GLIBC_2.2.5", "GLIBC_2.36", "GLIBC_ABI_DT_RELR"} <= set(libc["versions"])
    assert "GLIBC_2.37" not in libc["versions"]
    assert any(lib["soname"] == "libz.so.1" for lib in abi.libraries)
    assert "/lib/x86_64-linux-gnu" in abi.search_path

    job.refresh_from_db()
    for step in ("copy:", "syft:", "packages:", "ABI:", "match:", "gate:"):
        assert step in job.log, step
    assert job.result["sbom_id"] == sbom.pk and job.result["reused"] is False
    assert AuditEntry.objects.filter(action="image_version.scan").exists()


def test_a_digest_is_scanned_once_and_packages_are_shared(scan_env, django_assert_max_num_queries):
    version = scan_env["version"]
    run_scan(version.pk)
    version.refresh_from_db()
    sbom = version.sbom
    packages_before = Package.objects.count()
    links_before = SbomPackage.objects.filter(sbom=sbom).count()

    # scanned again (not forced): the SBOM is reused, syft does not run
    job = run_scan(version.pk)
    assert job.result["reused"] is True
    assert "syft:" not in job.log
    assert Sbom.objects.count() == 1

    # forced: scanned again into the same Sbom row, no new Package rows
    job = run_scan(version.pk, force=True)
    assert job.result["reused"] is False
    assert Sbom.objects.get().pk == sbom.pk
    assert Package.objects.count() == packages_before
    assert SbomPackage.objects.filter(sbom=sbom).count() == links_before

    # another digest with the same packages shares every Package row
    raw = sbom_read(sbom.blob_name)
    document = json.loads(raw)
    identities = normalize_packages(document, distro_ecosystem="Debian:12")
    other = sbom_record(
        digest="sha256:" + "e" * 64,
        subject=SbomSubject.IMAGE,
        raw=raw,
        document=document,
        identities=identities,
        abi=None,
        job_id=None,
    )
    assert Package.objects.count() == packages_before
    libc6 = Package.objects.get(name="libc6")
    assert set(libc6.sboms.values_list("pk", flat=True)) == {sbom.pk, other.pk}

    # batched: a handful of queries for ~100 packages, never one per package
    with django_assert_max_num_queries(4):
        ids = packages_get_or_create(identities)
    assert len(ids) == len(identities)


def test_registry_down_fails_the_scan_with_the_reason(scan_env, running_registry):
    version = scan_env["version"]
    job = image_version_scan_start(version_id=version.pk, actor=Actor.system_actor("test"))
    with running_registry.down():
        assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    version.refresh_from_db()
    assert version.scan_state == ScanState.FAILED
    assert version.sbom_id is None
    assert "skopeo copy" in version.scan_error
    assert "registry unavailable" in version.scan_error
    shown = api_client_of_admin().get(f"/api/v1/image-versions/{version.pk}/").json()
    assert shown["scan_state"] == "failed" and shown["scan_error"] == version.scan_error
    assert version.scan_error in job.error or job.error in version.scan_error


def test_a_cancelled_or_reaped_scan_says_why(scan_env):
    from portal.jobs import job_mark_failed

    version = scan_env["version"]
    job = image_version_scan_start(version_id=version.pk, actor=Actor.system_actor("test"))
    job_mark_failed(job_id=job.pk, error="The worker was lost.", from_states={"queued"})
    version.refresh_from_db()
    assert (version.scan_state, version.scan_error) == (ScanState.FAILED, "The worker was lost.")


def test_one_live_scan_per_digest_and_the_schedule(scan_env):
    version = scan_env["version"]
    actor = Actor.system_actor("test")
    first = image_version_scan_start(version_id=version.pk, actor=actor)
    second = image_version_scan_start(version_id=version.pk, actor=actor, force=True)
    assert first.pk == second.pk
    assert ImageVersion.objects.get(pk=version.pk).scan_state == ScanState.QUEUED
    assert image_versions_scan_approved(actor=actor) == 0  # already queued
    Job.objects.filter(pk=first.pk).update(state="succeeded")
    candidate, _ = image_version_record(
        actor=actor,
        image=scan_env["image"],
        registry=scan_env["registry"],
        tag="12-rc",
        digest="sha256:" + "c" * 64,
        size=None,
        arch="amd64",
    )
    assert image_versions_scan_approved(actor=actor) == 1  # approved only, not the candidate
    assert not Job.objects.filter(params__version_id=candidate.pk).exists()


def test_sbom_downloads(scan_env, api, admin_user):
    version = scan_env["version"]
    api.force_login(admin_user)
    response = api.get(f"/api/v1/image-versions/{version.pk}/sbom/")
    assert response.status_code == 404
    assert "not been scanned" in response.json()["detail"]
    run_scan(version.pk)
    response = api.get(f"/api/v1/image-versions/{version.pk}/sbom/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.cyclonedx+json"
    assert response["Content-Disposition"].startswith('attachment; filename="runtime_debian_12-')
    text = response.content.decode()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    libc6 = next(c for c in bom["components"] if c["name"] == "libc6")
    assert {"name": "syft:metadata:source", "value": "glibc"} in libc6["properties"]
    assert bom["metadata"]["component"]["version"] == version.digest

    response = api.get(f"/api/v1/image-versions/{version.pk}/sbom/?format=syft-json")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.syft.json"')
    version.refresh_from_db()
    assert response.content == sbom_read(version.sbom.blob_name)

    response = api.get(f"/api/v1/image-versions/{version.pk}/sbom/?format=spdx")
    assert response.status_code == 400
    assert "format" in response.json()["detail"]


def test_registry_sync_queues_a_scan_of_each_new_version(scan_env, running_registry):
    from tests.fixtures.registry import put_image

    image = BaseImage.objects.create(
        name="runtime/scansync",
        kind="runtime",
        os_family="debian",
        os_version="12",
        owner_team=scan_env["image"].owner_team,
        registry=scan_env["registry"],
    )
    digest = put_image(running_registry.url, "runtime/scansync", "1")
    job = job_create(
        kind="images.registry_sync",
        actor=Actor.system_actor("test"),
        params={"image_ids": [image.pk]},
    )[0]
    assert job_execute(job.pk) == "succeeded"
    version = ImageVersion.objects.get(digest=digest)
    scan = Job.objects.get(kind="images.scan", params__version_id=version.pk)
    assert scan.idempotency_key == f"scan:{digest}"
    assert version.scan_state == ScanState.QUEUED
    # a second sync finds nothing new and queues nothing
    Job.objects.filter(pk=scan.pk).update(state="succeeded")
    job = job_create(
        kind="images.registry_sync",
        actor=Actor.system_actor("test"),
        params={"image_ids": [image.pk]},
    )[0]
    assert job_execute(job.pk) == "succeeded"
    assert Job.objects.filter(kind="images.scan").count() == 1


# The build job's fixtures: a real Dockerfile build on the bootstrapped Debian base.
build_env = builds.build_env
clients = builds.clients


def test_a_successful_build_queues_the_scan_of_its_candidate(build_env, clients, scan_settings):
    recipe = f"FROM runtime/debian:12\n{builds.ENV_LINE}RUN echo scanned > /scanned.txt\n"
    _, build_job_id = builds.request_and_approve(clients, recipe, "12-scan")
    assert job_execute(build_job_id) == "succeeded", Job.objects.get(pk=build_job_id).error
    build_job = Job.objects.get(pk=build_job_id)
    version = ImageVersion.objects.get(pk=build_job.result["version_id"])
    scan = Job.objects.get(pk=build_job.result["scan_job_id"])
    assert (scan.kind, scan.params["version_id"]) == ("images.scan", version.pk)
    assert f"scan job #{scan.pk} queued" in build_job.log
    assert job_execute(scan.pk) == "succeeded", Job.objects.get(pk=scan.pk).error
    version.refresh_from_db()
    assert version.scan_state == ScanState.SCANNED
    assert version.sbom.ecosystem == "Debian:12"
    assert version.sbom.package_links.filter(package__name="libc6").exists()
