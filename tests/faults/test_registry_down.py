"""Registry down during a push and during a scan's copy: retried with back-off, then either
done once the registry is back or a clear failure; nothing half-published either way."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable

import pytest
from django.db import connection

from images.choices import ScanState
from images.models import ImageRequest, ImageVersion
from images.services.scans import image_version_scan_start
from portal.actors import Actor
from portal.jobs import job_execute
from portal.models import Job
from tests.faults.support import wait_for
from tests.images import test_builds as builds
from tests.images.scan_fixtures import scan_settings_fixture  # noqa: F401
from tests.images.test_builds import ENV_LINE, build_env, clients, request_and_approve  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _restart_when(registry, job_id: int, seen: Callable[[str], bool]) -> threading.Thread:
    """Start the stopped registry again as soon as the job's log shows `seen`."""

    def watch() -> None:
        try:
            wait_for(
                lambda: seen(Job.objects.filter(pk=job_id).values_list("log", flat=True).get()),
                300,
                "the job to meet the registry down",
            )
        finally:
            registry.start()
            connection.close()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _pull_base(build_env) -> None:  # noqa: F811
    """The base in buildah's storage: the build itself needs no registry until its push."""
    config = build_env["buildah"]
    pull = subprocess.run(
        config.buildah_argv("pull", "--tls-verify=false", build_env["base"].pull_ref),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pull.returncode == 0, pull.stderr


def test_push_retried_while_the_registry_is_down_publishes_once_it_is_back(
    build_env,  # noqa: F811
    clients,  # noqa: F811
    running_registry,
    settings,
):
    settings.PORTAL_BUILD_REGISTRY_RETRIES = 5
    settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS = 1.0  # 1, 2, 4, 8, 16 s
    _pull_base(build_env)
    recipe = f"FROM runtime/debian:12\n{ENV_LINE}RUN echo back > /back.txt\n"
    request_id, job_id = request_and_approve(clients, recipe, "12-back")
    running_registry.stop()
    watcher = _restart_when(
        running_registry, job_id, lambda log: "push to" in log and "registry unavailable" in log
    )
    try:
        assert job_execute(job_id) == "succeeded", Job.objects.get(pk=job_id).error
    finally:
        watcher.join(timeout=60)
    job = Job.objects.get(pk=job_id)
    assert "registry unavailable" in job.log and "retry 1 of 5" in job.log
    request = ImageRequest.objects.get(pk=request_id)
    assert request.state != "failed" and request.image_version_id is not None, request.error
    versions = ImageVersion.objects.filter(base_image__name="runtime/debian-hello")
    assert [v.tag for v in versions] == ["12-back"]  # one version, recorded once
    assert versions[0].digest.startswith("sha256:")


def test_push_with_the_registry_down_throughout_fails_clearly_and_publishes_nothing(
    build_env,  # noqa: F811
    clients,  # noqa: F811
    running_registry,
):
    _pull_base(build_env)
    recipe = f"FROM runtime/debian:12\n{ENV_LINE}RUN echo never > /never.txt\n"
    request_id, job_id = request_and_approve(clients, recipe, "12-never")
    with running_registry.down():
        assert job_execute(job_id) == "failed"
    job = Job.objects.get(pk=job_id)
    assert "the registry stayed unavailable after 3 attempts" in job.error, job.error
    assert "retry 2 of 2" in job.log
    assert ImageRequest.objects.get(pk=request_id).state == "failed"
    assert not ImageVersion.objects.filter(base_image__name="runtime/debian-hello").exists()
    assert builds.tag_missing(f"{running_registry.host}/runtime/debian-hello:12-never")


@pytest.fixture
def scan_env(scan_settings, running_registry, debian_base_image, platform_team):  # noqa: F811
    scan_settings.PORTAL_BUILD_REGISTRY_RETRIES = 4
    scan_settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS = 1.0
    _, _, version = builds.record_debian_base(running_registry, debian_base_image, platform_team)
    return version


def test_scan_copy_retried_while_the_registry_is_down_scans_once_it_is_back(
    scan_env, running_registry
):
    job = image_version_scan_start(version_id=scan_env.pk, actor=Actor.system_actor("test"))
    running_registry.stop()
    watcher = _restart_when(running_registry, job.pk, lambda log: "registry unavailable" in log)
    try:
        assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    finally:
        watcher.join(timeout=60)
    assert "retry 1 of 4" in Job.objects.get(pk=job.pk).log
    version = ImageVersion.objects.get(pk=scan_env.pk)
    assert version.scan_state == ScanState.SCANNED and version.sbom_id is not None


def test_scan_with_the_registry_down_throughout_fails_clearly_and_records_nothing(
    scan_env, running_registry, settings
):
    settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS = 0.2
    job = image_version_scan_start(version_id=scan_env.pk, actor=Actor.system_actor("test"))
    with running_registry.down():
        assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    assert "the registry stayed unavailable after 5 attempts" in job.error, job.error
    assert "skopeo copy" in job.error and "retry 4 of 4" in job.log
    version = ImageVersion.objects.get(pk=scan_env.pk)
    assert version.scan_state == ScanState.FAILED and version.sbom_id is None
    assert "stayed unavailable" in version.scan_error
