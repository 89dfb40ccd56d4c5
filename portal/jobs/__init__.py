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

The message is only a wake-up: a broker that is down when a job is queued leaves the job
`queued` (the request still succeeds), and `job_resend_queued` (in the reaper's round) sends
the message again for jobs queued longer than JOB_RESEND_QUEUED_AFTER_SECONDS. A worker lost
to a database restart keeps trying to record the outcome (JOB_DB_RETRY_SECONDS) before it
gives the job up to the reaper.
"""

from .kinds import (
    IllegalTransition,
    JobCancelled,
    JobFailure,
    JobKind,
    get_job_kind,
    job_kind,
    job_kinds,
)
from .reaper import job_reap_stale
from .runner import Heartbeat, JobContext, job_execute, selftest, worker_name
from .states import (
    job_append_log,
    job_cancel,
    job_create,
    job_heartbeat,
    job_mark_failed,
    job_mark_running,
    job_mark_succeeded,
    job_requeue,
    job_resend_queued,
    job_set_progress,
)

__all__ = [
    "Heartbeat",
    "IllegalTransition",
    "JobCancelled",
    "JobContext",
    "JobFailure",
    "JobKind",
    "get_job_kind",
    "job_append_log",
    "job_cancel",
    "job_create",
    "job_execute",
    "job_heartbeat",
    "job_kind",
    "job_kinds",
    "job_mark_failed",
    "job_mark_running",
    "job_mark_succeeded",
    "job_reap_stale",
    "job_requeue",
    "job_resend_queued",
    "job_set_progress",
    "selftest",
    "worker_name",
]
