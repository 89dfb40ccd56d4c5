"""The delivery job: one HTTP attempt of one webhook delivery."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_noop

from ..jobs import JobContext, JobFailure, job_kind
from .services import DELIVER_JOB_KIND, webhook_attempt_run


@job_kind(DELIVER_JOB_KIND, timeout_seconds=120, max_attempts=1, title="Webhook delivery")
def webhook_deliver(ctx: JobContext) -> dict[str, Any]:
    """POST the delivery's CloudEvent once; the job fails when the receiver did not take it
    (the delivery's own back-off decides whether another attempt follows)."""
    delivery_id = int(ctx.params["delivery_id"])
    number = int(ctx.params.get("attempt", 1))
    attempt = webhook_attempt_run(delivery_id=delivery_id, number=number, job_id=ctx.job.pk)
    if attempt is None:
        ctx.log(f"delivery #{delivery_id}: attempt {number} has nothing to do")
        return {"delivery": delivery_id, "skipped": True}
    ctx.log(
        f"delivery #{delivery_id} attempt {number}: status {attempt.status_code or '-'} "
        f"in {attempt.duration_ms} ms {attempt.error}".rstrip()
    )
    if not attempt.succeeded:
        # English, like every job error: the pages translate it (portal.job_errors).
        raise JobFailure(
            attempt.error or gettext_noop("HTTP %(status)s") % {"status": attempt.status_code}
        )
    return {"delivery": delivery_id, "attempt": number, "status": attempt.status_code}
