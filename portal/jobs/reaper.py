"""The reaper: jobs whose worker stopped heartbeating are requeued or failed, after the
lost worker's command (its process group) is ended so two attempts never overlap."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from ..actors import Actor
from ..audit import audit_record
from ..choices import JobState
from ..commands import ProcessGroup, process_group_end
from ..models import Job
from .kinds import (
    IllegalTransition,
)
from .states import (
    job_append_log,
    job_mark_failed,
    job_requeue,
)

logger = logging.getLogger(__name__)


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
                    error=gettext_noop(
                        "The worker %(worker)s stopped answering (no heartbeat since %(since)sZ) "
                        "and all %(attempts)s attempts are spent."
                    )
                    % {
                        "worker": job.worker or "?",
                        "since": f"{job.heartbeat_at:%Y-%m-%d %H:%M:%S}",
                        "attempts": job.max_attempts,
                    },
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
            job_mark_failed(
                job_id=job.pk,
                error=gettext_noop("Timed out after %(seconds)s s.")
                % {"seconds": job.timeout_seconds},
            )
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
