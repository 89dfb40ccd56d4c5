"""A real worker on the `scans` queue SIGKILLed mid-scan: the orphaned tool's process group is
ended by the reaper before the job is requeued, the second attempt scans alone and succeeds.

(Mid-build is tests/images/test_builds_worker.py; the generic case tests/portal/test_worker.py.)
syft runs through a wrapper that first sleeps while a flag file exists, so the kill lands
while the tool runs; the scan itself is the real syft on the real image.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from images.choices import ScanState
from images.models import ImageVersion
from images.scanning.syft import default_syft_binary
from images.services.scans import image_version_scan_start
from portal.actors import Actor
from portal.celery import app as celery_app
from portal.commands import ProcessGroup
from portal.jobs import job_reap_stale
from portal.models import Job
from tests.faults.support import wait_for
from tests.images import test_builds as builds

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _slow_syft(tmp_path: Path, flag: Path) -> Path:
    wrapper = tmp_path / "slow-syft"
    wrapper.write_text(
        f'#!/bin/sh\nif [ -e "{flag}" ]; then sleep 300; fi\nexec "{default_syft_binary()}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def test_worker_killed_mid_scan(
    workers, running_registry, debian_base_image, platform_team, tmp_path
):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs Redis as the broker (make test-faults)")
    celery_app.control.purge()
    flag = tmp_path / "slow"
    flag.touch()
    env = {
        "PORTAL_SYFT_BINARY": str(_slow_syft(tmp_path, flag)),
        "PORTAL_SCAN_WORK_DIR": str(tmp_path / "scan-work"),
        "PORTAL_SBOM_ROOT": str(tmp_path / "sboms"),
        "PORTAL_SCAN_REQUIRED": "0",
    }
    _, _, version = builds.record_debian_base(running_registry, debian_base_image, platform_team)
    job = image_version_scan_start(version_id=version.pk, actor=Actor.system_actor("test"))
    Job.objects.filter(pk=job.pk).update(max_attempts=2)
    group = None
    try:
        first = workers.start("scans", **env)
        wait_for(
            lambda: (
                Job.objects.filter(pk=job.pk, progress__gte=30).exclude(process_group={}).exists()
            ),
            120,
            "the scan to reach syft",
        )
        group = ProcessGroup.from_dict(Job.objects.get(pk=job.pk).process_group)
        assert group.members(), "the tool should be running"
        workers.kill(first)
        assert group.members(), "the tool outlives its worker (its own session)"
        assert Job.objects.get(pk=job.pk).state == "running"

        wait_for(lambda: bool(job_reap_stale(stale_after=timedelta(seconds=4))), 30, "the reaper")
        job.refresh_from_db()
        assert job.state == "queued" and "reaper: ended" in job.log
        assert group.members() == []  # ended before the second attempt can start

        flag.unlink()
        workers.start("scans", **env)
        wait_for(
            lambda: Job.objects.filter(pk=job.pk, state__in=["succeeded", "failed"]).exists(),
            180,
            "the second attempt",
        )
        job.refresh_from_db()
        assert job.state == "succeeded", (job.error, workers.log_text())
        assert job.attempts == 2
        version = ImageVersion.objects.get(pk=version.pk)
        assert version.scan_state == ScanState.SCANNED and version.sbom_id is not None
    finally:
        if group is not None:
            for pid in group.members():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
