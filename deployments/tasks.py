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


@shared_task(name="deployments.tasks.advance_plans")
def advance_plans() -> int:
    """Move every applying plan on (a wave's soak time passed, its releases reported healthy);
    return how many plans were looked at."""
    from .services import plans_advance_all

    return plans_advance_all()


@shared_task(name="deployments.tasks.fill_daily_counts")
def fill_daily_counts() -> int:
    """Store the dashboard's daily counts for the finished days missing (after midnight UTC:
    yesterday), so the chart never pays for it; return how many days were stored."""
    import datetime as dt

    from django.utils import timezone

    from .selectors.dashboard import CHART_DAYS
    from .services import deployment_daily_counts_fill

    return deployment_daily_counts_fill(
        today=timezone.now().astimezone(dt.UTC).date(), days=CHART_DAYS
    )
