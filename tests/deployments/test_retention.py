"""Retention: keep the newest N per service plus every version in use; the purge job."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile

from deployments.models import BinaryVersion
from deployments.storage import binary_store
from portal.actors import Actor
from portal.jobs import job_create, job_execute
from tests.deployments.conftest import stored_files
from tests.deployments.factories import BinaryVersionFactory, DeploymentFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def stored_version(service, version: str, content: bytes) -> BinaryVersion:
    sha = hashlib.sha256(content).hexdigest()
    name, _ = binary_store(sha256=sha, content=ContentFile(content))
    return BinaryVersionFactory(service=service, version=version, sha256=sha, file=name)


def test_purge_keeps_newest_and_in_use(binary_store_dir, settings):
    settings.PORTAL_BINARY_KEEP = 2
    service = ServiceFactory()
    v1 = stored_version(service, "1", b"one")
    v2 = stored_version(service, "2", b"two")
    v3 = stored_version(service, "3", b"three")
    v4 = stored_version(service, "4", b"four")
    v5 = stored_version(service, "5", b"two")  # same bytes as v2
    DeploymentFactory(service=service, binary_version=v1)
    job, _ = job_create(kind="deployments.purge_binaries", actor=Actor.system_actor("test"))
    assert job_execute(job.pk) == "succeeded"
    job.refresh_from_db()
    states = dict(BinaryVersion.objects.values_list("version", "state"))
    assert states == {"1": "active", "2": "purged", "3": "purged", "4": "active", "5": "active"}
    assert job.result["purged"] == 2
    # v3's file is gone; v2's bytes stay because v5 has the same sha256.
    names = {p.name for p in stored_files(binary_store_dir["root"])}
    assert names == {v1.sha256, v2.sha256, v4.sha256}
    assert v5.sha256 == v2.sha256 and v3.sha256 not in names


def test_purged_binary_cannot_be_downloaded_or_released(
    binary_store_dir, token_client, service_team, settings
):
    settings.PORTAL_BINARY_KEEP = 0
    service = ServiceFactory(team=service_team)
    old = stored_version(service, "1", b"old")
    from deployments.services import binary_versions_purge

    assert binary_versions_purge(actor=Actor.system_actor("t"))["purged"] == 1
    reader = token_client(service_team, ["binaries:read"])
    response = reader.get(f"/api/v1/binaries/{old.pk}/download/")
    assert response.status_code == 404
    assert "purged" in response.json()["detail"]


def test_beat_task_starts_one_job(settings):
    from deployments.tasks import purge_binaries

    first = purge_binaries()
    assert purge_binaries() == first  # idempotent while it is queued
    assert "purge-binaries" in settings.CELERY_BEAT_SCHEDULE
