"""A real Celery worker on the `builds` queue, SIGKILLed mid-build: nothing stays running, not
even the buildah it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from images.models import ImageRequest, ImageVersion
from portal.celery import app as celery_app
from portal.commands import ProcessGroup
from portal.jobs import job_reap_stale
from portal.models import Job
from tests.images.test_builds import ENV_LINE, build_env, clients, request_and_approve  # noqa: F401
from tests.portal.test_worker import ROOT, STALE, _database_url, state_of, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _buildah_processes(marker: str) -> list[int]:
    """The live buildah bud processes using our storage root."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if marker.encode() in argv and b"bud" in argv:
                found.append(int(entry.name))
    return found


def _kill_orphans(marker: str) -> None:
    """Kill what a failed test left behind: buildah processes using our storage root."""
    for pid in _buildah_processes(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_worker_killed_mid_build_leaves_job_and_request_failed(build_env, clients, tmp_path):  # noqa: F811
    from django.conf import settings

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the worker test needs Redis as the broker (make test)")
    celery_app.control.purge()
    # A quiet step: an orphaned buildah that writes again dies of the closed pipe by itself;
    # one in a long quiet step (a compile, a download) runs on with nobody to time it out.
    recipe = f"FROM runtime/debian:12\n{ENV_LINE}RUN sleep 30\n"
    request_id, job_id = request_and_approve(clients, recipe, "12-killed")
    Job.objects.filter(pk=job_id).update(max_attempts=1)
    config = build_env["buildah"]
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "JOB_HEARTBEAT_SECONDS": "1",
        "PORTAL_VAR_DIR": str(tmp_path),
        "PORTAL_BUILDAH_ROOT": config.storage_root,
        "PORTAL_BUILDAH_RUNROOT": config.run_root,
    }
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "builds", "-c", "1"]
            + ["--without-gossip", "--without-mingle", "-l", "info"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: "RUN sleep 30" in Job.objects.get(pk=job_id).log,
            120,
            "the worker to reach the RUN step",
        )
        assert ImageRequest.objects.get(pk=request_id).state == "building"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        # buildah runs in its own session: it outlives the worker, with nobody to time it out.
        group = ProcessGroup.from_dict(Job.objects.get(pk=job_id).process_group)
        # The group's leader is the build sandbox's runner (unshare, slirp4netns and buildah
        # are all in its group).
        assert group.program.endswith("images/builder/sandbox_run.py")
        assert group.pgid in _buildah_processes(config.storage_root)
        assert group.members()  # buildah and what it runs for the RUN step
        assert state_of(Job.objects.get(pk=job_id)) == "running"  # only the reaper can tell
        wait_for(lambda: bool(job_reap_stale(stale_after=STALE)), 30, "the reaper to act")
        # The reaper ended the orphaned build before failing the job (which frees the tag).
        assert group.members() == [] and _buildah_processes(config.storage_root) == []
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        _kill_orphans(config.storage_root)
        celery_app.control.purge()
    job = Job.objects.get(pk=job_id)
    assert job.state == "failed" and "stopped answering" in job.error
    assert "sandbox_run.py (process group " in job.log and "reaper: ended " in job.log
    # The reaper failing the job fails the request too (on_failure), with the job's error.
    response = clients["dev"].get(f"/api/v1/image-requests/{request_id}/")
    assert response.json()["state"] == "failed"
    assert "stopped answering" in response.json()["error"]
    assert not ImageVersion.objects.filter(base_image__name="runtime/debian-hello").exists()
