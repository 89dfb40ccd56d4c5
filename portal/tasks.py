"""Celery tasks of the portal: the one job runner and the reaper."""

from __future__ import annotations

from celery import shared_task

from .jobs import job_execute, job_reap_stale, job_resend_queued


@shared_task(name="portal.tasks.run_job", acks_late=True, reject_on_worker_lost=True)
def run_job(job_id: int) -> str:
    """Run the job `job_id`; the message carries nothing else."""
    return job_execute(job_id)


@shared_task(name="portal.tasks.reap_stale_jobs")
def reap_stale_jobs() -> list[int]:
    """Requeue or fail jobs whose worker stopped heart-beating; send again the messages of
    jobs queued too long (a broker that lost its queue)."""
    return job_reap_stale() + job_resend_queued()
