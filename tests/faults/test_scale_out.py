"""Scale-out on one machine: two workers on `builds` and one on `scans` (separate processes,
as on separate hosts) drain a burst of jobs, each job run exactly once on its own queue's
pool; and a worker on RabbitMQ instead of Redis."""

from __future__ import annotations

import collections
import socket

import pytest
from django.conf import settings

from portal.actors import Actor
from portal.celery import app as celery_app
from portal.choices import JobState
from portal.jobs import job_create
from portal.models import Job
from tests.faults.burst_jobs import BUILD_KIND, DEFAULT_KIND, SCAN_KIND
from tests.faults.support import ledger_runs, publisher_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _burst(kind: str, count: int, ledger, seconds: float) -> list[int]:
    actor = Actor.system_actor("test")
    params = {"ledger": str(ledger), "seconds": seconds}
    return [job_create(kind=kind, actor=actor, params=params)[0].pk for _ in range(count)]


def _all_final(ids: list[int]) -> bool:
    return not Job.objects.filter(pk__in=ids, state__in=JobState.live()).exists()


def test_two_build_workers_and_one_scan_worker_drain_a_burst_once_each(workers, tmp_path):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs Redis as the broker (make test-faults)")
    celery_app.control.purge()
    ledger = tmp_path / "ledger"
    build_a = workers.start("builds", concurrency=2)
    build_b = workers.start("builds", concurrency=2)
    scan = workers.start("scans", concurrency=2)
    builds = _burst(BUILD_KIND, 40, ledger, seconds=0.3)
    scans = _burst(SCAN_KIND, 20, ledger, seconds=0.3)
    wait_for(lambda: _all_final(builds + scans), 240, "the burst to drain")
    jobs = Job.objects.filter(pk__in=builds + scans)
    assert {job.state for job in jobs} == {JobState.SUCCEEDED}, workers.log_text()
    runs = ledger_runs(ledger)
    assert collections.Counter(run[0] for run in runs) == {pk: 1 for pk in builds + scans}
    pool_of = {run[0]: int(run[2].rsplit("/", 1)[1]) for run in runs}
    assert {pool_of[pk] for pk in builds} == {build_a.pid, build_b.pid}  # both took part
    assert {pool_of[pk] for pk in scans} == {scan.pid}  # scans only on the scans pool
    assert all(attempt == 1 for *_, attempt in runs)


def test_purge_empties_every_queue_of_the_portal():
    """An earlier run's message left on `scans` names a job id a new database reuses: CI saw
    that scan worker run a build job. The purge the tests start with must reach every queue."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs Redis as the broker (make test-faults)")
    from portal.tasks import run_job

    for queue in settings.CELERY_TASK_QUEUES_NAMES:
        run_job.apply_async(args=(10**9,), queue=queue)
    celery_app.control.purge()
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        left = {
            q: channel.queue_declare(q).message_count for q in settings.CELERY_TASK_QUEUES_NAMES
        }
    assert left == dict.fromkeys(settings.CELERY_TASK_QUEUES_NAMES, 0)


def _rabbitmq_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), 1):
            return True
    except OSError:
        return False


def test_a_worker_on_rabbitmq_runs_the_jobs(workers, tmp_path):
    if not _rabbitmq_up():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    ledger = tmp_path / "ledger"
    with publisher_broker(RABBITMQ_URL):
        celery_app.control.purge()
        workers.start("default", broker=RABBITMQ_URL)
        ids = _burst(DEFAULT_KIND, 5, ledger, seconds=0.1)
        wait_for(lambda: _all_final(ids), 120, "the jobs to run over RabbitMQ")
    assert set(Job.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"succeeded"}
    assert sorted(run[0] for run in ledger_runs(ledger)) == sorted(ids)
    assert "amqp://guest:**@127.0.0.1:5672//" in workers.log_text()
