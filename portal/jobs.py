"""The job framework: job kinds, guarded state transitions, heartbeat, progress, log, reaper.

A job is created `queued` by `job_create`, which sends the Celery task (carrying only the id)
on commit. The task (`portal.tasks.run_job`) claims it with `job_mark_running`, runs the kind's
handler with a `JobContext`, and ends it with `job_mark_succeeded` / `job_mark_failed`. Every
transition is a conditional UPDATE: zero rows means someone else moved the job first, and the
caller is refused with `IllegalTransition`.

External commands a handler runs (`portal.commands.run_command`) are recorded in the job's
`process_group` while they run. They run in their own session, so a worker killed mid-command
leaves its command running; the reaper ends that process group before it requeues or fails
the job, so a second attempt never overlaps the first one's command.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, close_old_connections, models, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat, Right
from django.utils import timezone

from .actors import Actor
from .audit import audit_record
from .choices import JobState
from .commands import ProcessGroup, process_group_end, watch_process_groups
from .models import Job

logger = logging.getLogger(__name__)


class IllegalTransition(Exception):  # noqa: N818 - the domain's name
    """The job is not in a state that allows this change."""


class JobCancelled(Exception):  # noqa: N818 - the domain's name
    """Raised inside a handler when the job was cancelled while it ran."""


class JobFailure(Exception):
    """A handler's clean failure: the message becomes the job's error. `retry` requeues it."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class JobKind:
    """A registered kind of job: its handler, queue, time limit and attempt budget."""

    name: str
    handler: Callable[[JobContext], dict[str, Any] | None]
    queue: str
    timeout_seconds: int
    max_attempts: int
    title: str
    on_failure: Callable[[Job], None] | None = None


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    queue: str = "default",
    timeout_seconds: int = 3600,
    max_attempts: int = 3,
    title: str = "",
    on_failure: Callable[[Job], None] | None = None,
) -> Callable[[Callable[[JobContext], dict[str, Any] | None]], Callable[..., Any]]:
    """Register a handler for a job kind (decorator).

    `on_failure(job)` is called whenever a job of this kind ends failed or cancelled, however
    that happened (the handler raised, the reaper gave up on a lost worker, a user cancelled),
    inside the transaction of that change: the place to move the job's domain object along.
    """
    if queue not in settings.CELERY_TASK_QUEUES_NAMES:
        raise ValueError(f"Unknown queue {queue!r}")

    def register(handler: Callable[[JobContext], dict[str, Any] | None]) -> Callable[..., Any]:
        _KINDS[name] = JobKind(
            name, handler, queue, timeout_seconds, max_attempts, title or name, on_failure
        )
        return handler

    return register


def get_job_kind(name: str) -> JobKind:
    """The registered kind `name` (importing the apps' job modules first)."""
    _load_kinds()
    try:
        return _KINDS[name]
    except KeyError as exc:
        raise ValueError(f"Unknown job kind {name!r}") from exc


def job_kinds() -> dict[str, JobKind]:
    """All registered kinds."""
    _load_kinds()
    return dict(_KINDS)


_loaded = False


def _load_kinds() -> None:
    global _loaded
    if not _loaded:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("jobs")
        _loaded = True


def job_create(
    *,
    kind: str,
    actor: Actor,
    params: dict[str, Any] | None = None,
    target: models.Model | None = None,
    team: Any = None,
    idempotency_key: str | None = None,
    max_attempts: int | None = None,
) -> tuple[Job, bool]:
    """Create a queued job and send its task on commit; return (job, created).

    With an idempotency key, a live (queued or running) job with the same key is returned
    instead of a second one.
    """
    spec = get_job_kind(kind)
    if idempotency_key:
        existing = Job.objects.filter(
            idempotency_key=idempotency_key, state__in=JobState.live()
        ).first()
        if existing is not None:
            return existing, False
    job = Job(
        kind=kind,
        queue=spec.queue,
        params=params or {},
        max_attempts=max_attempts or spec.max_attempts,
        timeout_seconds=spec.timeout_seconds,
        idempotency_key=idempotency_key or None,
        created_by=actor.user if actor.user is not None and actor.user.pk else None,
        created_by_token=actor.token,
        team=team if team is not None else (actor.token.team if actor.token else None),
    )
    if target is not None:
        job.target_type = ContentType.objects.get_for_model(target)
        job.target_id = str(target.pk)
    job.full_clean()
    try:
        with transaction.atomic():
            job.save()
            audit_record(actor=actor, action="job.create", obj=job, after={"kind": kind})
    except IntegrityError:
        # Lost a race on the idempotency key: the other job is the one.
        existing = Job.objects.filter(
            idempotency_key=idempotency_key, state__in=JobState.live()
        ).first()
        if existing is None:
            raise
        return existing, False
    _send_on_commit(job)
    return job, True


def _send_on_commit(job: Job) -> None:
    from .tasks import run_job

    job_id, queue = job.pk, job.queue
    transaction.on_commit(lambda: run_job.apply_async(args=(job_id,), queue=queue))


def _transition(job_id: int, *, from_states: set[str], to: str, **fields: Any) -> Job:
    updated = Job.objects.filter(pk=job_id, state__in=from_states).update(state=to, **fields)
    job = Job.objects.get(pk=job_id)
    if not updated:
        raise IllegalTransition(
            f"Job {job_id} is {job.state}; it cannot become {to} "
            f"(allowed from: {', '.join(sorted(from_states))})."
        )
    return job


def job_mark_running(*, job_id: int, worker: str) -> Job:
    """queued → running; counts an attempt. Refused when the job is not queued."""
    now = timezone.now()
    job = _transition(
        job_id,
        from_states={JobState.QUEUED},
        to=JobState.RUNNING,
        worker=worker[:200],
        heartbeat_at=now,
        started_at=now,
        attempts=F("attempts") + 1,
    )
    audit_record(
        actor=Actor.system_actor(worker),
        action="job.running",
        obj=job,
        before={"state": "queued"},
        after={"state": "running", "attempt": job.attempts},
    )
    return job


def job_mark_succeeded(*, job_id: int, result: dict[str, Any] | None = None) -> Job:
    """running → succeeded."""
    job = _transition(
        job_id,
        from_states={JobState.RUNNING},
        to=JobState.SUCCEEDED,
        result=result or {},
        progress=100,
        step="finished",
        finished_at=timezone.now(),
    )
    audit_record(
        actor=Actor.system_actor(job.worker or "worker"),
        action="job.succeeded",
        obj=job,
        before={"state": "running"},
        after={"state": "succeeded"},
    )
    return job


def job_mark_failed(*, job_id: int, error: str, from_states: set[str] | None = None) -> Job:
    """running (or queued, for the reaper) → failed, with the error shown to users."""
    with transaction.atomic():
        job = _transition(
            job_id,
            from_states=from_states or {JobState.RUNNING},
            to=JobState.FAILED,
            error=error[:10000],
            finished_at=timezone.now(),
        )
        audit_record(
            actor=Actor.system_actor(job.worker or "reaper"),
            action="job.failed",
            obj=job,
            after={"state": "failed", "error": error[:500]},
        )
        _notify_failure(job)
    return job


def _notify_failure(job: Job) -> None:
    spec = get_job_kind(job.kind)
    if spec.on_failure is not None:
        spec.on_failure(job)


def job_requeue(*, job_id: int, reason: str) -> Job:
    """running → queued (attempts remain); the task is sent again on commit."""
    with transaction.atomic():
        job = _transition(
            job_id,
            from_states={JobState.RUNNING},
            to=JobState.QUEUED,
            worker="",
            heartbeat_at=None,
            process_group={},
            step=f"requeued: {reason}"[:200],
        )
        job_append_log(job_id=job_id, text=f"[portal] requeued: {reason}\n")
        audit_record(
            actor=Actor.system_actor("reaper"),
            action="job.requeued",
            obj=job,
            before={"state": "running"},
            after={"state": "queued", "reason": reason},
        )
        _send_on_commit(job)
    return job


def job_cancel(*, job: Job, actor: Actor) -> Job:
    """queued|running → cancelled. A running handler stops at its next cancel check."""
    with transaction.atomic():
        before = job.state
        job = _transition(
            job.pk,
            from_states={JobState.QUEUED, JobState.RUNNING},
            to=JobState.CANCELLED,
            finished_at=timezone.now(),
        )
        audit_record(
            actor=actor,
            action="job.cancel",
            obj=job,
            before={"state": before},
            after={"state": "cancelled"},
        )
        _notify_failure(job)
    return job


def job_append_log(*, job_id: int, text: str) -> None:
    """Append to the job's log, keeping at most JOB_LOG_MAX_CHARS (the tail)."""
    if not text:
        return
    limit = settings.JOB_LOG_MAX_CHARS
    Job.objects.filter(pk=job_id).update(log=Right(Concat(F("log"), Value(text)), limit))


def job_set_progress(*, job_id: int, percent: int, step: str = "") -> None:
    """Record progress (0–100) and the current step; also counts as a heartbeat."""
    percent = max(0, min(100, int(percent)))
    Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(
        progress=percent, step=step[:200], heartbeat_at=timezone.now()
    )


def job_heartbeat(*, job_id: int) -> bool:
    """Touch the heartbeat; False when the job is no longer running (cancelled, reaped)."""
    return bool(
        Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(heartbeat_at=timezone.now())
    )


def job_reap_stale(*, stale_after: timedelta | None = None) -> list[int]:
    """Requeue (or fail, when attempts are spent) running jobs whose heartbeat is stale.

    Also fails running jobs past their own timeout. Before either, the external command the
    job's worker left running is ended (`_end_lost_command`); a job whose command may still be
    running stays `running` until a later round can end it. Returns the ids it acted on.
    """
    stale_after = stale_after or timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    now = timezone.now()
    acted = []
    for job in Job.objects.filter(state=JobState.RUNNING, heartbeat_at__lt=now - stale_after):
        if not _end_lost_command(job):
            continue
        try:
            if job.attempts >= job.max_attempts:
                job_mark_failed(
                    job_id=job.pk,
                    error=f"The worker {job.worker or '?'} stopped answering (no heartbeat since "
                    f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S}Z) and all {job.max_attempts} attempts "
                    "are spent.",
                )
            else:
                job_requeue(
                    job_id=job.pk,
                    reason=f"worker {job.worker or '?'} lost (attempt {job.attempts} of "
                    f"{job.max_attempts})",
                )
            acted.append(job.pk)
        except IllegalTransition:
            continue  # it finished or was cancelled meanwhile
    for job in Job.objects.filter(state=JobState.RUNNING, started_at__isnull=False):
        started_at = job.started_at
        if started_at is None or started_at + timedelta(seconds=job.timeout_seconds + 60) >= now:
            continue
        if not _end_lost_command(job):
            continue
        try:
            job_mark_failed(job_id=job.pk, error=f"Timed out after {job.timeout_seconds} s.")
            acted.append(job.pk)
        except IllegalTransition:
            continue
    return acted


def _end_lost_command(job: Job) -> bool:
    """End the external command recorded in `job.process_group`; False while it may still run.

    A command on this node is ended (SIGTERM, then SIGKILL). One recorded on this host before
    a reboot (or by a container since replaced) is gone with it. One on another host can only
    be ended there: the job stays `running`, with a note in its step and log, until a reaper
    on that host ends it (or someone cancels the job).
    """
    if not job.process_group:
        return True
    try:
        group = ProcessGroup.from_dict(job.process_group)
    except (KeyError, TypeError, ValueError):
        logger.warning("job %s: unreadable process_group %r", job.pk, job.process_group)
        return True
    what = f"{group.program} (process group {group.pgid} on {group.host})"
    if not group.is_here():
        if group.host == socket.gethostname():
            return True  # this host since rebooted, or a new container: the group died with it
        _note_waiting(job, f"its command {what} may still run; only a reaper there can end it")
        return False
    if not group.members():
        return True
    if not process_group_end(group):
        _note_waiting(job, f"its command {what} could not be ended")
        return False
    job_append_log(
        job_id=job.pk, text=f"[portal] reaper: ended {what}, left running by the lost worker\n"
    )
    audit_record(
        actor=Actor.system_actor("reaper"),
        action="job.command_ended",
        obj=job,
        after={"process_group": group.as_dict()},
    )
    return True


def _note_waiting(job: Job, why: str) -> None:
    """Say (once) in the job's step and log why the reaper leaves it running."""
    logger.warning("job %s not reaped yet: %s", job.pk, why)
    step = f"reaper waiting: {why}"[:200]
    if job.step != step:
        Job.objects.filter(pk=job.pk, state=JobState.RUNNING).update(step=step)
        job_append_log(job_id=job.pk, text=f"[portal] reaper: not requeued or failed yet: {why}\n")


class JobContext:
    """What a handler gets: the job, progress and log helpers, and cancellation checks."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.params = job.params
        self._cancel_checked_at = 0.0
        self._cancelled = False

    def log(self, text: str) -> None:
        """Append a line (or lines) to the job log."""
        if text and not text.endswith("\n"):
            text += "\n"
        job_append_log(job_id=self.job.pk, text=text)

    def progress(self, percent: int, step: str = "") -> None:
        """Report progress; also a heartbeat."""
        job_set_progress(job_id=self.job.pk, percent=percent, step=step)
        if step:
            self.log(f"[portal] {percent:3d}% {step}")

    def should_cancel(self) -> bool:
        """Whether the job was cancelled (checked at most once a second)."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._cancel_checked_at >= 1.0:
            self._cancel_checked_at = now
            state = Job.objects.filter(pk=self.job.pk).values_list("state", flat=True).first()
            self._cancelled = state != JobState.RUNNING
        return self._cancelled

    def check_cancelled(self) -> None:
        """Raise JobCancelled if the job was cancelled."""
        if self.should_cancel():
            raise JobCancelled

    def set_result_object(self, obj: models.Model) -> None:
        """Link the object this job created."""
        Job.objects.filter(pk=self.job.pk).update(
            result_type=ContentType.objects.get_for_model(obj), result_id=str(obj.pk)
        )


class Heartbeat:
    """A thread that touches the job's heartbeat while the handler runs."""

    def __init__(self, job_id: int, interval: float) -> None:
        self.job_id = job_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                job_heartbeat(job_id=self.job_id)
            except Exception:  # a database hiccup must not kill the heartbeat
                logger.exception("heartbeat for job %s failed", self.job_id)
            finally:
                close_old_connections()


def worker_name() -> str:
    """host:pid of this process."""
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


def job_execute(job_id: int) -> str:
    """Claim and run one job in this process. Returns the final state (or 'skipped')."""
    try:
        job = job_mark_running(job_id=job_id, worker=worker_name())
    except IllegalTransition:
        return "skipped"  # a duplicate or late message: the row says it's not ours to run
    except Job.DoesNotExist:
        logger.warning("job %s does not exist (rolled back?)", job_id)
        return "skipped"
    spec = get_job_kind(job.kind)
    ctx = JobContext(job)
    ctx.log(f"[portal] attempt {job.attempts} of {job.max_attempts} on {job.worker}")
    try:
        with (
            Heartbeat(job_id, settings.JOB_HEARTBEAT_SECONDS),
            watch_process_groups(
                on_start=lambda group: _command_started(job_id, group),
                on_exit=lambda group: _command_ended(job_id, group),
            ),
        ):
            result = spec.handler(ctx)
    except JobCancelled:
        ctx.log("[portal] stopped: the job was cancelled")
        return JobState.CANCELLED
    except JobFailure as exc:
        ctx.log(f"[portal] error: {exc}")
        if exc.retry and job.attempts < job.max_attempts:
            delay = min(60, 2**job.attempts)
            time.sleep(delay)  # backoff before the next attempt
            try:
                job_requeue(job_id=job_id, reason=str(exc))
                return JobState.QUEUED
            except IllegalTransition:
                return Job.objects.get(pk=job_id).state
        return _fail(job_id, str(exc))
    except Exception as exc:
        logger.exception("job %s (%s) crashed", job_id, job.kind)
        ctx.log(f"[portal] internal error: {type(exc).__name__}: {exc}")
        return _fail(job_id, f"Internal error: {type(exc).__name__}: {exc}")
    if ctx.should_cancel() and Job.objects.get(pk=job_id).state == JobState.CANCELLED:
        return JobState.CANCELLED
    try:
        job_mark_succeeded(job_id=job_id, result=result or {})
    except IllegalTransition:
        return Job.objects.get(pk=job_id).state
    return JobState.SUCCEEDED


def _command_started(job_id: int, group: ProcessGroup) -> None:
    Job.objects.filter(pk=job_id).update(process_group=group.as_dict())


def _command_ended(job_id: int, group: ProcessGroup) -> None:
    Job.objects.filter(
        pk=job_id, process_group__node=group.node, process_group__pgid=group.pgid
    ).update(process_group={})


def _fail(job_id: int, error: str) -> str:
    try:
        job_mark_failed(job_id=job_id, error=error)
    except IllegalTransition:
        return Job.objects.get(pk=job_id).state
    return JobState.FAILED


@job_kind("portal.selftest", timeout_seconds=600, max_attempts=1, title="Worker self-test")
def selftest(ctx: JobContext) -> dict[str, Any]:
    """Prove a worker picks jobs up: walk `steps` steps of `seconds` each, with progress."""
    steps = max(1, min(100, int(ctx.params.get("steps", 5))))
    seconds = max(0.0, min(60.0, float(ctx.params.get("seconds", 0.2))))
    for i in range(steps):
        ctx.check_cancelled()
        ctx.progress(int(100 * i / steps), f"step {i + 1} of {steps}")
        time.sleep(seconds)
    return {"steps": steps, "worker": worker_name()}
