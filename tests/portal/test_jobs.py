"""The job framework: guarded transitions, idempotency, log, progress, the reaper."""

import dataclasses
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.actors import Actor
from portal.commands import ProcessGroup
from portal.jobs import (
    IllegalTransition,
    job_append_log,
    job_cancel,
    job_create,
    job_execute,
    job_mark_running,
    job_mark_succeeded,
    job_reap_stale,
    job_set_progress,
)
from portal.models import AuditEntry, Job
from tests.portal.tool_jobs import TOOL_KIND

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system_actor("test")


def make_job(**params):
    job, created = job_create(kind="portal.selftest", actor=SYSTEM, params=params)
    assert created
    return job


def test_allowed_path_queued_running_succeeded():
    job = make_job(steps=1, seconds=0)
    job_mark_running(job_id=job.pk, worker="w1")
    job = job_mark_succeeded(job_id=job.pk, result={"ok": True})
    assert (job.state, job.attempts, job.progress, job.result) == (
        "succeeded",
        1,
        100,
        {"ok": True},
    )
    actions = list(
        AuditEntry.objects.filter(object_id=str(job.pk)).values_list("action", flat=True)
    )
    assert {"job.create", "job.running", "job.succeeded"} <= set(actions)


def test_illegal_transitions_are_refused_and_change_nothing():
    job = make_job()
    with pytest.raises(IllegalTransition, match="is queued; it cannot become succeeded"):
        job_mark_succeeded(job_id=job.pk)
    job_mark_running(job_id=job.pk, worker="w1")
    with pytest.raises(IllegalTransition):
        job_mark_running(job_id=job.pk, worker="w2")
    job.refresh_from_db()
    assert (job.state, job.worker, job.attempts) == ("running", "w1", 1)


def test_final_states_are_final():
    job = make_job()
    job_cancel(job=job, actor=SYSTEM)
    for attempt in (
        lambda: job_mark_running(job_id=job.pk, worker="w"),
        lambda: job_cancel(job=job, actor=SYSTEM),
    ):
        with pytest.raises(IllegalTransition):
            attempt()
    assert Job.objects.get(pk=job.pk).state == "cancelled"


def test_idempotency_key_returns_the_live_job():
    a, created_a = job_create(kind="portal.selftest", actor=SYSTEM, idempotency_key="k1")
    b, created_b = job_create(kind="portal.selftest", actor=SYSTEM, idempotency_key="k1")
    assert created_a and not created_b and a.pk == b.pk
    job_cancel(job=a, actor=SYSTEM)
    c, created_c = job_create(kind="portal.selftest", actor=SYSTEM, idempotency_key="k1")
    assert created_c and c.pk != a.pk


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="Unknown job kind 'nope'"):
        job_create(kind="nope", actor=SYSTEM)
    assert not Job.objects.exists()


def test_log_appends_and_keeps_the_tail(settings):
    settings.JOB_LOG_MAX_CHARS = 10
    job = make_job()
    job_append_log(job_id=job.pk, text="abcdef")
    job_append_log(job_id=job.pk, text="ghijkl")
    assert Job.objects.get(pk=job.pk).log == "cdefghijkl"


def test_progress_is_clamped_and_only_for_running_jobs():
    job = make_job()
    job_set_progress(job_id=job.pk, percent=50, step="not running yet")
    assert Job.objects.get(pk=job.pk).progress == 0
    job_mark_running(job_id=job.pk, worker="w")
    job_set_progress(job_id=job.pk, percent=250, step="x")
    assert Job.objects.get(pk=job.pk).progress == 100


def test_execute_runs_the_handler_in_process():
    job = make_job(steps=3, seconds=0)
    assert job_execute(job.pk) == "succeeded"
    job.refresh_from_db()
    assert job.result["steps"] == 3
    assert "step 3 of 3" in job.log
    assert job_execute(job.pk) == "skipped"  # a duplicate message runs nothing


def test_reaper_requeues_then_fails_stale_jobs():
    job = make_job()
    job.max_attempts = 2
    job.save()
    job_mark_running(job_id=job.pk, worker="lost-worker")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == [job.pk]
    job.refresh_from_db()
    assert job.state == "queued" and "requeued" in job.log
    job_mark_running(job_id=job.pk, worker="second-worker")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    job_reap_stale(stale_after=timedelta(seconds=30))
    job.refresh_from_db()
    assert job.state == "failed"
    assert "all 2 attempts are spent" in job.error


@pytest.fixture
def lost_command() -> Iterator[ProcessGroup]:
    """A tool's process group (leader and child) whose worker is gone: nobody will stop it."""
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 100 & echo $!; exec sleep 100"],
        start_new_session=True,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # the child is there
    group = ProcessGroup.of(proc.pid, "sh")
    yield group
    if group.members():
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def stale_running_job(group: ProcessGroup | dict, max_attempts: int = 2) -> Job:
    job = make_job()
    Job.objects.filter(pk=job.pk).update(max_attempts=max_attempts)
    job_mark_running(job_id=job.pk, worker="lost-host:123")
    record = group.as_dict() if isinstance(group, ProcessGroup) else group
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5), process_group=record
    )
    return job


@pytest.mark.parametrize("max_attempts", [2, 1])
def test_reaper_ends_the_lost_command_before_requeueing_or_failing(lost_command, max_attempts):
    job = stale_running_job(lost_command, max_attempts=max_attempts)
    assert len(lost_command.members()) == 2
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == [job.pk]
    job.refresh_from_db()
    assert job.state == ("queued" if max_attempts == 2 else "failed")
    assert lost_command.members() == []
    assert f"reaper: ended sh (process group {lost_command.pgid} on " in job.log
    assert AuditEntry.objects.filter(action="job.command_ended", object_id=str(job.pk)).exists()
    if job.state == "queued":
        assert job.process_group == {}  # the next attempt starts with no record


def test_reaper_leaves_a_job_whose_command_runs_on_another_host(lost_command):
    elsewhere = dataclasses.replace(lost_command, node="other-boot/1", host="build-7")
    job = stale_running_job(elsewhere)
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == []
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == []
    job.refresh_from_db()
    assert job.state == "running"  # no second attempt while the first one's tool may run
    assert job.step.startswith("reaper waiting: its command sh (process group ")
    assert job.log.count("only a reaper there can end it") == 1  # said once
    assert len(lost_command.members()) == 2  # not ours to signal: its pid means another process
    # The time limit does not free it either.
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(days=1))
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == []
    assert Job.objects.get(pk=job.pk).state == "running"


def test_a_command_recorded_before_this_host_rebooted_is_gone():
    rebooted = {"node": "old-boot/1", "host": socket.gethostname(), "pgid": 4242,
                "started": 1, "program": "buildah"}  # fmt: skip
    job = stale_running_job(rebooted)
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == [job.pk]
    assert Job.objects.get(pk=job.pk).state == "queued"


def test_a_reused_pid_is_not_taken_for_the_lost_command(lost_command):
    # The recorded leader started earlier than the process that has its pid now.
    job = stale_running_job(dataclasses.replace(lost_command, started=lost_command.started - 1))
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == [job.pk]
    assert Job.objects.get(pk=job.pk).state == "queued"
    assert len(lost_command.members()) == 2  # an unrelated process: left alone


@pytest.mark.parametrize("record", [{"pgid": 1}, {"node": "x", "pgid": "all"}, ["a"]])
def test_an_unreadable_record_does_not_stop_the_reaper(record):
    job = stale_running_job(record)
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == [job.pk]
    assert Job.objects.get(pk=job.pk).state == "queued"


def test_a_running_command_is_recorded_in_its_job_and_cleared_after():
    job, _ = job_create(
        kind=TOOL_KIND, actor=SYSTEM, params={"argv": ["sh", "-c", "echo $$; sleep 0.2"]}
    )
    assert job_execute(job.pk) == "succeeded"
    job.refresh_from_db()
    seen = job.result["process_group"]
    assert seen["pgid"] == int(job.log.split("running the tool\n", 1)[1].split()[0])
    assert ProcessGroup.from_dict(seen).is_here() and seen["program"] == "sh"
    assert job.process_group == {}


def test_reaper_leaves_fresh_jobs_alone():
    job = make_job()
    job_mark_running(job_id=job.pk, worker="w")
    assert job_reap_stale(stale_after=timedelta(seconds=30)) == []
    assert Job.objects.get(pk=job.pk).state == "running"


def test_api_job_detail_and_cancel_conflict(admin_user, api):
    api.force_authenticate(admin_user)
    job = make_job()
    body = api.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["state"] == "queued" and body["attempts"] == 0 and "log_tail" in body
    assert api.post(f"/api/v1/jobs/{job.pk}/cancel/").json()["state"] == "cancelled"
    response = api.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert "is cancelled" in response.json()["detail"]


def test_jobs_are_visible_only_to_their_team(token_client, service_team, platform_team, api):
    from portal.auth import token_create

    token, _ = token_create(team=platform_team, name="sync", scopes=["images:read"], actor=SYSTEM)
    job, _ = job_create(kind="portal.selftest", actor=Actor(token=token))
    other = token_client(service_team, ["images:read"])
    assert other.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    mine = token_client(platform_team, ["images:read"])
    assert mine.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert other.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
