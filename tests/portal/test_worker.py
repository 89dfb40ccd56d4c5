"""A real Celery worker on real Redis: SIGKILL mid-run never leaves a job stuck running."""

from __future__ import annotations

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
from portal.jobs import job_create, job_reap_stale
from portal.models import Job

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
