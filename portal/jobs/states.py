"""A job's life as guarded transitions: create, claim, succeed, fail, requeue, cancel; log,
progress and heartbeat. Every transition is a conditional UPDATE; zero rows → IllegalTransition."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat, Right
from django.utils import timezone
from django.utils.translation import gettext

from ..actors import Actor
from ..audit import audit_record
from ..choices import JobState
from ..models import Job
from ..templatetags.portal_i18n import status_label
from .kinds import (
    IllegalTransition,
    get_job_kind,
)

logger = logging.getLogger(__name__)


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
        sent_at=timezone.now(),
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
    job_id, queue = job.pk, job.queue
    transaction.on_commit(lambda: _send(job_id, queue))


def _send(job_id: int, queue: str) -> bool:
    """Send the job's wake-up message; False when the broker cannot take it now.

    The row is committed already: a broker that is down must not turn the request that queued
    the job into an error. The job stays `queued` and `job_resend_queued` sends it again.
    """
    from kombu.exceptions import OperationalError as BrokerError

    from ..tasks import run_job

    try:
        run_job.apply_async(args=(job_id,), queue=queue)
    except (BrokerError, OSError) as exc:
        logger.warning(
            "job %s: the broker did not take its message (%s); the reaper sends it again",
            job_id,
            exc,
        )
        return False
    return True


def job_resend_queued(*, older_than: timedelta | None = None) -> list[int]:
    """Send again the message of every job still `queued` whose message is older than
    `older_than` (JOB_RESEND_QUEUED_AFTER_SECONDS): a broker restarted without its queue
    lost it. Returns the ids sent.

    Idempotent: each resend first moves `sent_at` with a conditional UPDATE (one reaper wins
    a row), and a job runs at most once per attempt however many messages name it, because a
    worker claims it with the guarded queued → running transition and skips it otherwise.
    """
    if older_than is None:
        older_than = timedelta(seconds=settings.JOB_RESEND_QUEUED_AFTER_SECONDS)
    now = timezone.now()
    sent = []
    cutoff = now - older_than
    stale = Job.objects.filter(
        Q(sent_at__lt=cutoff) | Q(sent_at__isnull=True, created_at__lt=cutoff),
        state=JobState.QUEUED,
    ).values_list("pk", "queue", "sent_at")
    for job_id, queue, sent_at in stale:
        claimed = Job.objects.filter(pk=job_id, state=JobState.QUEUED, sent_at=sent_at).update(
            sent_at=now
        )
        if claimed and _send(job_id, queue):
            job_append_log(
                job_id=job_id,
                text="[portal] reaper: sent the job's message again (the last one"
                + (f", sent {sent_at:%Y-%m-%d %H:%M:%S}Z," if sent_at else "")
                + " was not picked up)\n",
            )
            sent.append(job_id)
    return sent


def _transition(job_id: int, *, from_states: set[str], to: str, **fields: Any) -> Job:
    updated = Job.objects.filter(pk=job_id, state__in=from_states).update(state=to, **fields)
    job = Job.objects.get(pk=job_id)
    if not updated:
        raise IllegalTransition(
            gettext(
                "Job %(job_id)s is %(state)s; it cannot become %(to)s (allowed from: "
                "%(from_states)s)."
            )
            % {
                "job_id": job_id,
                "state": status_label(job.state),
                "to": to,
                "from_states": ", ".join(sorted(from_states)),
            }
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
            sent_at=timezone.now(),
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
