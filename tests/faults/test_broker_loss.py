"""Broker loss: jobs queued while Redis is killed and started again (empty) all reach a final
state, each run exactly once; the reaper sends again the messages the broker lost."""

from __future__ import annotations

import collections
from datetime import timedelta
from pathlib import Path

import pytest

from portal.actors import Actor
from portal.choices import JobState
from portal.jobs import job_create, job_reap_stale, job_resend_queued
from portal.models import Job
from tests.faults.burst_jobs import DEFAULT_KIND
from tests.faults.support import ScratchRedis, ledger_runs, publisher_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

RESEND_AFTER = timedelta(seconds=3)


@pytest.fixture
def redis(tmp_path: Path):
    server = ScratchRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _queue(count: int, ledger: Path, seconds: float) -> list[int]:
    actor = Actor.system_actor("test")
    return [
        job_create(
            kind=DEFAULT_KIND, actor=actor, params={"ledger": str(ledger), "seconds": seconds}
        )[0].pk
        for _ in range(count)
    ]


def _reaper_round() -> bool:
    """One round of what beat runs every 30 s (with short thresholds); True once all final."""
    job_reap_stale(stale_after=timedelta(seconds=6))
    job_resend_queued(older_than=RESEND_AFTER)
    return not Job.objects.filter(state__in=JobState.live()).exists()


def test_jobs_queued_across_a_broker_restart_all_finish_once(redis, workers, tmp_path):
    ledger = tmp_path / "ledger"
    with publisher_broker(redis.url):
        workers.start("default", broker=redis.url)
        before = _queue(10, ledger, seconds=0.5)
        wait_for(lambda: len(ledger_runs(ledger)) >= 2, 90, "the worker to run the first jobs")
        redis.kill()  # the queued messages (and the unacked one) are gone with it
        during = _queue(5, ledger, seconds=0.2)  # accepted though the broker is down
        assert Job.objects.filter(pk__in=during, state=JobState.QUEUED).count() == 5
        redis.start()  # the same port, an empty broker: the worker reconnects
        wait_for(_reaper_round, 120, "every job to reach a final state")
    jobs = Job.objects.filter(pk__in=before + during)
    assert {job.state for job in jobs} == {JobState.SUCCEEDED}, workers.log_text()
    runs = collections.Counter(job_id for job_id, *_ in ledger_runs(ledger))
    assert runs == {pk: 1 for pk in before + during}  # each job ran once, none twice
    assert all(job.attempts == 1 for job in jobs)
    resent = [job.pk for job in jobs if "sent the job's message again" in job.log]
    assert set(during) <= set(resent)  # their first message never reached a broker


def test_a_resent_message_never_runs_a_job_twice(redis, workers, tmp_path):
    ledger = tmp_path / "ledger"
    with publisher_broker(redis.url):
        (job_id,) = _queue(1, ledger, seconds=0.2)
        # No worker yet: the message waits. Two reaper rounds (or two reapers) send it again.
        assert job_resend_queued(older_than=timedelta(0)) == [job_id]
        assert job_resend_queued(older_than=timedelta(0)) == [job_id]
        workers.start("default", broker=redis.url)
        wait_for(
            lambda: Job.objects.filter(pk=job_id, state=JobState.SUCCEEDED).exists(),
            90,
            "the job to succeed",
        )
        wait_for(lambda: workers.log_text().count("'skipped'") == 2, 30, "the duplicates")
    assert [run[0] for run in ledger_runs(ledger)] == [job_id]  # one run for three messages
    job = Job.objects.get(pk=job_id)
    assert job.attempts == 1
    assert job.log.count("sent the job's message again") == 2


def test_a_job_queued_while_the_broker_is_down_is_accepted(redis, tmp_path):
    with publisher_broker(redis.url):
        redis.kill()
        (job_id,) = _queue(1, tmp_path / "ledger", seconds=0)
    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.QUEUED and job.sent_at is not None
