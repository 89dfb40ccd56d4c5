"""Writes of the webhooks: subscriptions (create, update, delete, rotate the secret), the
fan-out of an event into deliveries, attempts (run, record, back off), send test, redeliver.

Every delivery attempt is a `webhooks.deliver` job (queue `default`, one HTTP request, the
job fails when the request does). A failed attempt with attempts left sets `next_attempt_at`
(exponential back-off, capped); the beat's sweep (`webhook_retry_due`) starts it when due.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..actors import Actor
from ..api.errors import Conflict
from ..audit import audit_record
from ..choices import Role, role_at_least
from ..jobs import job_create
from ..models import Job, Team
from ..selectors import role_holders
from .choices import TEST_EVENT_TYPE, DeliveryState, EventType
from .cloudevents import CONTENT_TYPE, cloudevent, cloudevent_body
from .models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from .signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature, subscription_secret
from .transport import DeliveryOutcome, deliver, url_problem

DELIVER_JOB_KIND = "webhooks.deliver"
NAME_MAX = 100
URL_MAX = 500


# --- who may ---------------------------------------------------------------------------------


def webhook_may_read(*, actor: Actor, team: Team) -> bool:
    """Members of the team (any role) and platform admins."""
    return actor.is_platform_admin or actor.role_in(team) is not None


def webhook_may_manage(*, actor: Actor, team: Team) -> bool:
    """Maintainers (or above) of the team and platform admins."""
    if actor.is_platform_admin:
        return True
    role = actor.role_in(team)
    return role is not None and role_at_least(role, Role.MAINTAINER)


def _require_manager(actor: Actor, team: Team) -> None:
    """Refuse (403) naming the role needed and the team's maintainers who hold it."""
    if not webhook_may_manage(actor=actor, team=team):
        message = _(
            "Only a maintainer of team %(team)s or a platform admin may manage its webhooks."
        ) % {"team": team.name}
        holders = role_holders(minimum=Role.MAINTAINER, team=team)
        if holders:
            message += " " + _("Ask one of them: %(names)s.") % {"names": ", ".join(holders)}
        raise PermissionDenied(message)


# --- subscriptions ---------------------------------------------------------------------------


def _webhook_key() -> bytes:
    configured: str = settings.PORTAL_WEBHOOK_KEY
    if configured:
        return configured.encode()
    return hashlib.sha256(f"portal-webhooks:{settings.SECRET_KEY}".encode()).digest()


def webhook_subscription_secret(subscription: WebhookSubscription) -> str:
    """The subscription's signing secret (derived, never stored)."""
    return subscription_secret(key=_webhook_key(), salt=subscription.secret_salt)


def _clean_event_types(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValidationError({"event_types": _("Choose at least one event type (a list).")})
    if not all(isinstance(v, str) for v in value):
        raise ValidationError({"event_types": _("Event types are strings.")})
    unknown = sorted(set(value) - set(EventType.values))
    if unknown:
        raise ValidationError(
            {
                "event_types": _("Unknown event type(s): %(unknown)s. Known: %(known)s.")
                % {"unknown": ", ".join(unknown), "known": ", ".join(EventType.values)}
            }
        )
    return sorted(set(value))


def _clean_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"url": _("Give the URL deliveries are POSTed to.")})
    url: str = value.strip()
    if len(url) > URL_MAX:
        raise ValidationError(
            {"url": _("The URL is longer than %(max)d characters.") % {"max": URL_MAX}}
        )
    problem = url_problem(url, allow_local=settings.PORTAL_WEBHOOK_ALLOW_LOCAL)
    if problem:
        raise ValidationError(
            {"url": _("This URL cannot receive webhooks: %(problem)s.") % {"problem": problem}}
        )
    return url


def _clean_name(value: Any, team: Team, exclude: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"name": _("Give the subscription a name.")})
    name: str = value.strip()
    if len(name) > NAME_MAX or "\x00" in name:
        raise ValidationError({"name": _("A name has at most 100 characters and no NUL.")})
    clash = WebhookSubscription.objects.filter(team=team, name=name)
    if exclude is not None:
        clash = clash.exclude(pk=exclude)
    if clash.exists():
        raise ValidationError(
            {
                "name": _("Team %(team)s already has a webhook named %(name)s.")
                % {"team": team.name, "name": name}
            }
        )
    return name


def webhook_subscription_create(
    *,
    team: Team,
    name: str,
    url: str,
    event_types: list[str],
    actor: Actor,
    active: bool = True,
) -> tuple[WebhookSubscription, str]:
    """Subscribe `team` to `event_types` at `url`; return it with its secret (shown once).

    Raises:
        PermissionDenied: not a maintainer of the team nor a platform admin (403).
        ValidationError: a blank or duplicate name, a URL that is not http(s), carries
            credentials or names a refused address, unknown or no event types (400).
    """
    _require_manager(actor, team)
    subscription = WebhookSubscription(
        team=team,
        name=_clean_name(name, team),
        url=_clean_url(url),
        event_types=_clean_event_types(event_types),
        active=bool(active),
        secret_salt=secrets.token_hex(32),
        created_by=actor.person if actor.person is not None and actor.person.pk else None,
    )
    subscription.full_clean()
    with transaction.atomic():
        subscription.save()
        audit_record(
            actor=actor,
            action="webhook.create",
            obj=subscription,
            after={"url": subscription.url, "event_types": subscription.event_types},
        )
    return subscription, webhook_subscription_secret(subscription)


def webhook_subscription_update(
    *, subscription: WebhookSubscription, actor: Actor, changes: dict[str, Any]
) -> WebhookSubscription:
    """Change the name, URL, event types or active flag.

    Raises:
        PermissionDenied: see `webhook_subscription_create` (403).
        ValidationError: unknown fields or a bad value (400).
    """
    _require_manager(actor, subscription.team)
    unknown = sorted(set(changes) - {"name", "url", "event_types", "active"})
    if unknown:
        raise ValidationError({"detail": _("Unknown field(s): %(f)s.") % {"f": ", ".join(unknown)}})
    before = {
        "name": subscription.name,
        "url": subscription.url,
        "event_types": subscription.event_types,
        "active": subscription.active,
    }
    if "name" in changes:
        subscription.name = _clean_name(changes["name"], subscription.team, subscription.pk)
    if "url" in changes:
        subscription.url = _clean_url(changes["url"])
    if "event_types" in changes:
        subscription.event_types = _clean_event_types(changes["event_types"])
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise ValidationError({"active": _("active is true or false.")})
        subscription.active = changes["active"]
    subscription.full_clean()
    with transaction.atomic():
        subscription.save()
        audit_record(
            actor=actor,
            action="webhook.update",
            obj=subscription,
            before=before,
            after={
                "name": subscription.name,
                "url": subscription.url,
                "event_types": subscription.event_types,
                "active": subscription.active,
            },
        )
    return subscription


def webhook_subscription_rotate_secret(
    *, subscription: WebhookSubscription, actor: Actor
) -> tuple[WebhookSubscription, str]:
    """A new secret (shown once); the old one stops signing at once."""
    _require_manager(actor, subscription.team)
    with transaction.atomic():
        subscription.secret_salt = secrets.token_hex(32)
        subscription.save(update_fields=["secret_salt", "updated_at"])
        audit_record(actor=actor, action="webhook.rotate_secret", obj=subscription)
    return subscription, webhook_subscription_secret(subscription)


def webhook_subscription_delete(*, subscription: WebhookSubscription, actor: Actor) -> None:
    """Delete the subscription and its delivery log."""
    _require_manager(actor, subscription.team)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="webhook.delete",
            obj=subscription,
            before={"url": subscription.url, "event_types": subscription.event_types},
        )
        subscription.delete()


# --- events → deliveries ---------------------------------------------------------------------


def _event_body(
    *, event_type: str, team: Team | None, subject: str, data: dict[str, Any], event_id: str
) -> str:
    return cloudevent_body(
        cloudevent(
            event_id=event_id,
            source=settings.PORTAL_URL,
            type=event_type,
            subject=subject,
            time=timezone.now(),
            data=data,
            team=team.name if team is not None else "",
        )
    )


def _start_attempt(delivery: WebhookDelivery, number: int) -> Job:
    job, _created = job_create(
        kind=DELIVER_JOB_KIND,
        actor=Actor.system_actor("webhooks"),
        params={"delivery_id": delivery.pk, "attempt": number},
        target=delivery.subscription,
        team=delivery.subscription.team,
        idempotency_key=f"{DELIVER_JOB_KIND}:{delivery.pk}:{number}",
        max_attempts=1,
    )
    return job


def webhook_event_fanout(
    *, event_type: str, team: Team | None, subject: str, data: dict[str, Any], public: bool
) -> list[WebhookDelivery]:
    """One delivery (and its first attempt's job, sent on commit) per active subscription
    that wants `event_type` and may see the event: every team's for a public event, else
    the owning team's and the platform teams'. Runs in the caller's transaction."""
    subscriptions = WebhookSubscription.objects.filter(active=True).select_related("team")
    if not public:
        audience = Q(team__is_platform=True)
        if team is not None:
            audience |= Q(team=team)
        subscriptions = subscriptions.filter(audience)
    wanted = [s for s in subscriptions if event_type in s.event_types]
    if not wanted:
        return []
    event_id = str(uuid.uuid4())
    body = _event_body(
        event_type=event_type, team=team, subject=subject, data=data, event_id=event_id
    )
    deliveries = []
    with transaction.atomic():
        for subscription in wanted:
            delivery = WebhookDelivery.objects.create(
                subscription=subscription,
                event_id=event_id,
                event_type=event_type,
                subject=subject[:300],
                body=body,
            )
            _start_attempt(delivery, 1)
            deliveries.append(delivery)
    return deliveries


def webhook_send_test(
    *, subscription: WebhookSubscription, actor: Actor
) -> tuple[WebhookDelivery, Job]:
    """Deliver a `webhook.test` event to this subscription now (inactive ones too)."""
    _require_manager(actor, subscription.team)
    event_id = str(uuid.uuid4())
    body = _event_body(
        event_type=TEST_EVENT_TYPE,
        team=subscription.team,
        subject=f"webhooks/{subscription.pk}",
        data={"subscription": subscription.name, "requested_by": str(actor)},
        event_id=event_id,
    )
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            subscription=subscription,
            event_id=event_id,
            event_type=TEST_EVENT_TYPE,
            subject=f"webhooks/{subscription.pk}",
            body=body,
            is_test=True,
        )
        job = _start_attempt(delivery, 1)
        audit_record(
            actor=actor, action="webhook.test", obj=subscription, after={"delivery": delivery.pk}
        )
    return delivery, job


def webhook_redeliver(*, delivery: WebhookDelivery, actor: Actor) -> tuple[WebhookDelivery, Job]:
    """A new delivery of the same body (same CloudEvent id: receivers deduplicate on it).

    Raises:
        PermissionDenied: see `webhook_subscription_create` (403).
        Conflict: the delivery is still pending (409).
    """
    subscription = delivery.subscription
    _require_manager(actor, subscription.team)
    if delivery.state == DeliveryState.PENDING:
        raise Conflict(
            _("Delivery #%(id)d is still pending; redeliver it once it has ended.")
            % {"id": delivery.pk},
            code="illegal_transition",
        )
    with transaction.atomic():
        again = WebhookDelivery.objects.create(
            subscription=subscription,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            subject=delivery.subject,
            body=delivery.body,
            is_test=delivery.is_test,
            redelivery_of=delivery,
        )
        job = _start_attempt(again, 1)
        audit_record(
            actor=actor,
            action="webhook.redeliver",
            obj=subscription,
            after={"delivery": again.pk, "of": delivery.pk},
        )
    return again, job


# --- attempts --------------------------------------------------------------------------------


def webhook_backoff_seconds(attempt: int) -> int:
    """The wait after failed attempt `attempt` (1-based): base × 2^(attempt-1), capped."""
    base: int = settings.PORTAL_WEBHOOK_BACKOFF_SECONDS
    cap: int = settings.PORTAL_WEBHOOK_BACKOFF_MAX_SECONDS
    return int(min(cap, base * 2 ** max(0, attempt - 1)))


def webhook_attempt_run(
    *, delivery_id: int, number: int, job_id: int | None
) -> WebhookAttempt | None:
    """Send attempt `number` of the delivery and record it (None: nothing to do — the
    delivery ended, was deleted, or this attempt ran already)."""
    delivery = (
        WebhookDelivery.objects.select_related("subscription__team").filter(pk=delivery_id).first()
    )
    if delivery is None or delivery.state != DeliveryState.PENDING or delivery.attempts >= number:
        return None
    subscription = delivery.subscription
    body = delivery.body.encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": CONTENT_TYPE,
        "X-Portal-Delivery": str(delivery.pk),
        "X-Portal-Event": delivery.event_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(
            secret=webhook_subscription_secret(subscription), timestamp=timestamp, body=body
        ),
    }
    started_at = timezone.now()
    outcome = deliver(
        url=subscription.url,
        body=body,
        headers=headers,
        timeout=float(settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS),
        allow_local=settings.PORTAL_WEBHOOK_ALLOW_LOCAL,
    )
    return webhook_attempt_record(
        delivery=delivery, number=number, job_id=job_id, started_at=started_at, outcome=outcome
    )


def webhook_attempt_record(
    *,
    delivery: WebhookDelivery,
    number: int,
    job_id: int | None,
    started_at: Any,
    outcome: DeliveryOutcome,
) -> WebhookAttempt:
    """Record the attempt and move the delivery: succeeded, failed (no retry, or the last
    attempt), or pending with the next attempt due after the back-off."""
    max_attempts: int = settings.PORTAL_WEBHOOK_MAX_ATTEMPTS
    now = timezone.now()
    fields: dict[str, Any] = {
        "attempts": number,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error[:500],
    }
    if outcome.succeeded:
        fields.update(state=DeliveryState.SUCCEEDED, finished_at=now, next_attempt_at=None)
    elif not outcome.retry or number >= max_attempts:
        fields.update(state=DeliveryState.FAILED, finished_at=now, next_attempt_at=None)
    else:
        fields.update(next_attempt_at=now + timedelta(seconds=webhook_backoff_seconds(number)))
    with transaction.atomic():
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            job_id=job_id,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            response_excerpt=outcome.excerpt,
            error=outcome.error[:500],
            succeeded=outcome.succeeded,
        )
        WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(**fields)
    return attempt


def webhook_retry_due(*, now: Any = None) -> list[int]:
    """Start the next attempt of every pending delivery whose back-off has passed.

    Each is claimed with a guarded update (`next_attempt_at` cleared), so two sweeps never
    start the same attempt; the attempt's idempotency key stops a duplicate job too.
    """
    now = now or timezone.now()
    started = []
    due = WebhookDelivery.objects.filter(
        state=DeliveryState.PENDING, next_attempt_at__lte=now
    ).select_related("subscription__team")[:500]
    for delivery in due:
        with transaction.atomic():
            claimed = WebhookDelivery.objects.filter(
                pk=delivery.pk, state=DeliveryState.PENDING, next_attempt_at__lte=now
            ).update(next_attempt_at=None)
            if claimed:
                _start_attempt(delivery, delivery.attempts + 1)
                started.append(delivery.pk)
    return started


def webhook_log_purge(*, now: Any = None, batch: int = 1000) -> int:
    """Delete finished deliveries (and their attempts) older than PORTAL_WEBHOOK_LOG_DAYS;
    pending ones are never touched. Returns how many were deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.PORTAL_WEBHOOK_LOG_DAYS)
    deleted = 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(
                state__in=[DeliveryState.SUCCEEDED, DeliveryState.FAILED], finished_at__lt=cutoff
            ).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        WebhookDelivery.objects.filter(pk__in=ids).update(redelivery_of=None)
        WebhookDelivery.objects.filter(redelivery_of__in=ids).update(redelivery_of=None)
        WebhookDelivery.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
