"""A real Celery worker on real Redis: SIGKILL mid-run never leaves a job stuck running, nor
its external command running under a second attempt."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from portal.actors import Actor
from portal.celery import app as celery_app
from portal.commands import ProcessGroup
from portal.jobs import job_cancel, job_create, job_reap_stale
from portal.models import Job
from tests.portal.tool_jobs import TOOL_KIND

pytestmark = [pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
STALE = timedelta(seconds=4)


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("the worker test needs the PostgreSQL test database (make test)")
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen]]:
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("the worker test needs Redis as the broker (make test)")
    celery_app.control.purge()
    workers: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "JOB_HEARTBEAT_SECONDS": "1",
            "PORTAL_VAR_DIR": str(tmp_path),
        }
        log = open(tmp_path / f"worker{len(workers)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                "default",
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--include",
                "tests.portal.tool_jobs",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        workers.append(proc)
        return proc

    yield start
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    celery_app.control.purge()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def state_of(job: Job) -> str:
    return Job.objects.filter(pk=job.pk).values_list("state", flat=True).get()


def kill_worker_mid_run(start_worker: Callable[[], subprocess.Popen], job: Job) -> None:
    worker = start_worker()
    wait_for(
        lambda: Job.objects.filter(pk=job.pk, state="running", progress__gt=0).exists(),
        60,
        "the worker to start the job",
    )
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    assert state_of(job) == "running"  # nobody told the database: only the reaper can tell


def test_killed_worker_job_is_retried_by_reaper_and_then_succeeds(start_worker):
    job, _ = job_create(
        kind="portal.selftest",
        actor=Actor.system_actor("test"),
        params={"steps": 6, "seconds": 1},
        max_attempts=2,
    )
    kill_worker_mid_run(start_worker, job)
    wait_for(lambda: bool(job_reap_stale(stale_after=STALE)), 30, "the reaper to act")
    assert state_of(job) == "queued"
    start_worker()
    wait_for(lambda: state_of(job) == "succeeded", 90, "the retried job to succeed")
    job.refresh_from_db()
    assert job.attempts == 2
    assert "requeued: worker" in job.log


def test_killed_worker_job_past_max_attempts_fails(start_worker):
    job, _ = job_create(
        kind="portal.selftest",
        actor=Actor.system_actor("test"),
        params={"steps": 30, "seconds": 1},
        max_attempts=1,
    )
    kill_worker_mid_run(start_worker, job)
    wait_for(lambda: bool(job_reap_stale(stale_after=STALE)), 30, "the reaper to act")
    job.refresh_from_db()
    assert job.state == "failed"
    assert "all 1 attempts are spent" in job.error
    # A late redelivery of the original message must not resurrect it.
    start_worker()
    time.sleep(3)
    assert state_of(job) == "failed"


# The fake tool: a leader with a child in its own session, as buildah runs a RUN step. On
# start it writes `<pid> <child pid>` to runs/run-<pid>, after noting in `overlap` any earlier
# run's process still alive (zombies aside): a second run beside a first one's tool.
TOOL = """
import os, subprocess, sys, time
runs, overlap = sys.argv[1], sys.argv[2]

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

earlier = []
for name in os.listdir(runs):
    if name.startswith("run-"):
        earlier += [int(p) for p in open(os.path.join(runs, name)).read().split()]
if any(alive(p) for p in earlier):
    open(overlap, "w").write(" ".join(str(p) for p in earlier if alive(p)))
child = subprocess.Popen(["sleep", "300"])
with open(os.path.join(runs, ".tmp"), "w") as handle:
    handle.write(f"{os.getpid()} {child.pid}")
os.rename(os.path.join(runs, ".tmp"), os.path.join(runs, f"run-{os.getpid()}"))
print("tool started", flush=True)
time.sleep(300)
"""


def test_killed_workers_command_is_ended_before_the_job_runs_again(start_worker, tmp_path):
    runs, overlap = tmp_path / "runs", tmp_path / "overlap"
    runs.mkdir()
    job, _ = job_create(
        kind=TOOL_KIND,
        actor=Actor.system_actor("test"),
        params={"argv": [sys.executable, "-c", TOOL, str(runs), str(overlap)]},
        max_attempts=2,
    )

    def tool_pids() -> list[int]:
        return [int(p) for run in runs.glob("run-*") for p in run.read_text().split()]

    try:
        worker = start_worker()
        wait_for(lambda: len(list(runs.glob("run-*"))) == 1, 60, "the first run's tool")
        wait_for(lambda: bool(Job.objects.get(pk=job.pk).process_group), 10, "its record")
        group = ProcessGroup.from_dict(Job.objects.get(pk=job.pk).process_group)
        leader, child = tool_pids()
        assert group.pgid == leader and sorted(group.members()) == sorted([leader, child])
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        time.sleep(1)
        # The tool has its own session: it outlives the worker, and nothing times it out now.
        assert sorted(group.members()) == sorted([leader, child])
        assert state_of(job) == "running"

        wait_for(lambda: bool(job_reap_stale(stale_after=STALE)), 30, "the reaper to act")
        job.refresh_from_db()
        assert job.state == "queued"
        assert group.members() == []  # ended before the job was requeued
        assert f"reaper: ended {sys.executable} (process group {leader} on " in job.log
        assert job.process_group == {}

        start_worker()
        wait_for(lambda: len(list(runs.glob("run-*"))) == 2, 60, "the second run's tool")
        assert not overlap.exists(), f"the second run saw {overlap.read_text()} alive"
        assert Job.objects.get(pk=job.pk).attempts == 2
        job_cancel(job=Job.objects.get(pk=job.pk), actor=Actor.system_actor("test"))
        wait_for(lambda: not Job.objects.get(pk=job.pk).process_group, 30, "the cancelled tool")
    finally:
        for pid in tool_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
