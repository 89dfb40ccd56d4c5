"""Running a job in a worker: the JobContext handlers get, the heartbeat thread, and
`job_execute` (claim, run the kind's handler, record the outcome)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    models,
)
from django.utils.translation import gettext_noop

from ..choices import JobState
from ..commands import ProcessGroup, watch_process_groups
from ..models import Job
from .kinds import (
    IllegalTransition,
    JobCancelled,
    JobFailure,
    get_job_kind,
    job_kind,
)
from .states import (
    job_append_log,
    job_heartbeat,
    job_mark_failed,
    job_mark_running,
    job_mark_succeeded,
    job_requeue,
    job_set_progress,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
_DB_LOST = (OperationalError, InterfaceError)


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
        said = f"[portal] error: {exc}"
        _db_retry(lambda: ctx.log(said))
        if exc.retry and job.attempts < job.max_attempts:
            delay = min(60, 2**job.attempts)
            time.sleep(delay)  # backoff before the next attempt
            return _requeue(job_id, str(exc))
        return _fail(job_id, str(exc))
    except _DB_LOST as exc:
        # The database went away under the handler (a restart, a failover): not the job's
        # fault. Another attempt if one is left, once the database answers again.
        logger.warning("job %s (%s): the database was lost: %s", job_id, job.kind, exc)
        if job.attempts < job.max_attempts:
            return _requeue(job_id, f"the database was lost: {exc}"[:500])
        return _fail(
            job_id,
            gettext_noop("The database was lost while the job ran: %(error)s") % {"error": exc},
        )
    except Exception as exc:
        logger.exception("job %s (%s) crashed", job_id, job.kind)
        said = f"[portal] internal error: {type(exc).__name__}: {exc}"
        _db_retry(lambda: ctx.log(said))
        return _fail(
            job_id,
            gettext_noop("Internal error: %(kind)s: %(error)s")
            % {"kind": type(exc).__name__, "error": exc},
        )
    if _db_retry(ctx.should_cancel) and _state(job_id) == JobState.CANCELLED:
        return JobState.CANCELLED
    try:
        _db_retry(lambda: job_mark_succeeded(job_id=job_id, result=result or {}))
    except IllegalTransition:
        return _state(job_id)
    return JobState.SUCCEEDED


def _db_retry(call: Callable[[], T]) -> T:
    """Run `call`, again while the database is unreachable, for JOB_DB_RETRY_SECONDS.

    A job's outcome written during a database restart is not lost: the worker waits for the
    database instead of leaving the job `running` for the reaper to find a minute later.
    """
    deadline = time.monotonic() + float(settings.JOB_DB_RETRY_SECONDS)
    while True:
        try:
            return call()
        except _DB_LOST as exc:
            if time.monotonic() >= deadline:
                raise
            logger.warning("the database is unreachable (%s); trying again", exc)
            try:
                connection.close()
            except DatabaseError:
                pass
            time.sleep(1.0)


def _state(job_id: int) -> str:
    return _db_retry(lambda: Job.objects.filter(pk=job_id).values_list("state", flat=True).get())


def _requeue(job_id: int, reason: str) -> str:
    try:
        _db_retry(lambda: job_requeue(job_id=job_id, reason=reason))
    except IllegalTransition:
        return _state(job_id)
    return JobState.QUEUED


def _command_started(job_id: int, group: ProcessGroup) -> None:
    Job.objects.filter(pk=job_id).update(process_group=group.as_dict())


def _command_ended(job_id: int, group: ProcessGroup) -> None:
    Job.objects.filter(
        pk=job_id, process_group__node=group.node, process_group__pgid=group.pgid
    ).update(process_group={})


def _fail(job_id: int, error: str) -> str:
    try:
        _db_retry(lambda: job_mark_failed(job_id=job_id, error=error))
    except IllegalTransition:
        return _state(job_id)
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
