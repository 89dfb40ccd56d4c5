"""Celery tasks of the deployments app (periodic upkeep; the work itself runs as a Job)."""

from celery import shared_task

from portal.actors import Actor
from portal.jobs import job_create


@shared_task(name="deployments.tasks.purge_binaries")
def purge_binaries() -> int:
    """Start the retention job (one at a time); return its id."""
    job, _ = job_create(
        kind="deployments.purge_binaries",
        actor=Actor.system_actor("beat"),
        idempotency_key="deployments.purge_binaries",
    )
    return job.pk
