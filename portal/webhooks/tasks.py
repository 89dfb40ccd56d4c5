"""Celery tasks of the webhooks: the sweep that starts due retries."""

from __future__ import annotations

from celery import shared_task

from .services import webhook_log_purge, webhook_retry_due


@shared_task(name="portal.webhooks.tasks.retry_due_deliveries")
def retry_due_deliveries() -> list[int]:
    """Start the next attempt of deliveries whose back-off has passed."""
    return webhook_retry_due()


@shared_task(name="portal.webhooks.tasks.purge_delivery_log")
def purge_delivery_log() -> int:
    """Forget finished deliveries older than PORTAL_WEBHOOK_LOG_DAYS."""
    return webhook_log_purge()
