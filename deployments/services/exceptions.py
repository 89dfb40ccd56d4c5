"""Dockerfile-policy exceptions of a service (a rule, an image or an OS family it may use),
granted and revoked by platform admins, each with a reason and an expiry; audited."""

from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.actors import Actor
from portal.audit import audit_record
from portal.selectors import role_holders

from ..models import PolicyException, Service

SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}\Z")
MAX_DAYS = 365


def _require_admin(actor: Actor) -> None:
    if not actor.is_platform_admin or actor.person is None:
        admins = ", ".join(role_holders(minimum="platform-admin")) or "-"
        raise PermissionDenied(
            _("Only a platform admin may grant or revoke policy exceptions (%(names)s).")
            % {"names": admins}
        )


def policy_exception_grant(
    *, actor: Actor, service: Service, subject: str, justification: str, days: int
) -> PolicyException:
    """Let `service` use `subject` (BIP004, DL3008, runtime/alpine, alpine) for `days` days.

    Raises:
        PermissionDenied: not a platform admin (403).
        ValidationError: a malformed subject, no justification, days outside 1-365, or an
            active exception of the same subject (400).
    """
    _require_admin(actor)
    subject = (subject or "").strip()
    justification = (justification or "").strip()
    errors: dict[str, str] = {}
    if not SUBJECT_RE.match(subject):
        errors["subject"] = _("Name a rule (BIP004, DL3008), a catalog image or an OS family.")
    if not justification:
        errors["justification"] = _("Say why the service needs it.")
    if not 1 <= days <= MAX_DAYS:
        errors["days"] = _("An exception lasts 1 to %(n)d days.") % {"n": MAX_DAYS}
    now = timezone.now()
    if (
        not errors
        and PolicyException.objects.filter(
            service=service, subject=subject, expires_at__gt=now
        ).exists()
    ):
        errors["subject"] = _("%(service)s already has an active exception for %(subject)s.") % {
            "service": service.name,
            "subject": subject,
        }
    if errors:
        raise ValidationError(errors)
    exception = PolicyException(
        service=service,
        subject=subject,
        justification=justification,
        approved_by=actor.person,
        expires_at=now + dt.timedelta(days=days),
    )
    exception.full_clean()
    with transaction.atomic():
        exception.save()
        audit_record(
            actor=actor,
            action="policy_exception.grant",
            obj=exception,
            after={"service": service.name, "subject": subject, "days": days},
        )
    return exception


def policy_exception_revoke(*, actor: Actor, exception: PolicyException) -> None:
    """End an exception now (it stays in the audit log)."""
    _require_admin(actor)
    with transaction.atomic():
        before = {"subject": exception.subject, "expires_at": exception.expires_at.isoformat()}
        # The check reads exceptions by day (active while `expires_at` is after today's
        # start), so an ended one expires at the start of today.
        exception.expires_at = dt.datetime.combine(timezone.localdate(), dt.time.min, tzinfo=dt.UTC)
        exception.save(update_fields=["expires_at"])
        audit_record(actor=actor, action="policy_exception.revoke", obj=exception, before=before)
