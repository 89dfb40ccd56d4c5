"""Deciding a waiver: approve or reject (a platform admin other than the requester), revoke."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

from images.choices import WaiverState
from images.models import Waiver
from images.services.waivers.request import OPEN_STATES
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.jobs import IllegalTransition
from portal.templatetags.portal_i18n import status_label


def _is_requester(waiver: Waiver, actor: Actor) -> bool:
    person = actor.person
    return person is not None and waiver.requested_by_id == person.pk


# "… it cannot be approved", one whole sentence per decision.
_CANNOT = {
    "approve": gettext_lazy(
        "Waiver #%(waiver)s is %(state)s; it cannot be approved (allowed from: %(allowed)s)."
    ),
    "reject": gettext_lazy(
        "Waiver #%(waiver)s is %(state)s; it cannot be rejected (allowed from: %(allowed)s)."
    ),
    "revoke": gettext_lazy(
        "Waiver #%(waiver)s is %(state)s; it cannot be revoked (allowed from: %(allowed)s)."
    ),
}


def _decide(
    *, waiver_id: int, actor: Actor, to: str, from_states: tuple[str, ...], note: str, verb: str
) -> Waiver:
    with transaction.atomic():
        waiver = Waiver.objects.select_for_update().filter(pk=waiver_id).first()
        if waiver is None:
            raise ValidationError(
                {"waiver": gettext("No waiver #%(waiver_id)s.") % {"waiver_id": waiver_id}}
            )
        if waiver.state not in from_states:
            raise IllegalTransition(
                str(_CANNOT[verb])
                % {
                    "waiver": waiver.pk,
                    "state": status_label(waiver.state),
                    "allowed": ", ".join(str(status_label(state)) for state in from_states),
                }
            )
        before = waiver.state
        fields: dict[str, Any] = {"state": to, "decision_note": note.strip()[:5000]}
        if verb in ("approve", "reject"):
            fields["decided_at"] = timezone.now()
            fields["approved_by"] = actor.person if verb == "approve" else None
        Waiver.objects.filter(pk=waiver.pk).update(**fields)
        waiver.refresh_from_db()
        audit_record(
            actor=actor,
            action=f"waiver.{verb}",
            obj=waiver,
            before={"state": before},
            after={"state": waiver.state, "note": waiver.decision_note[:500]},
        )
    return waiver


# Completes "Only a platform admin may %(verb)s waivers." in the request's language.
_WAIVER_VERBS = {
    "approve": pgettext_lazy("may … waivers", "approve"),
    "reject": pgettext_lazy("may … waivers", "reject"),
}


def _require_reviewer(waiver_id: int, actor: Actor, verb: str) -> Waiver:
    waiver = Waiver.objects.filter(pk=waiver_id).first()
    if waiver is None:
        raise ValidationError(
            {"waiver": gettext("No waiver #%(waiver_id)s.") % {"waiver_id": waiver_id}}
        )
    verb_text = _WAIVER_VERBS[verb]
    if not actor.is_platform_admin:
        raise PermissionDenied(
            gettext("Only a platform admin may %(verb)s waivers.") % {"verb": verb_text}
        )
    if not actor.is_system and actor.person is None:
        raise PermissionDenied(
            gettext(
                "This token has no person behind it, so it cannot %(verb)s waivers; use a token "
                "a platform admin created."
            )
            % {"verb": verb_text}
        )
    if _is_requester(waiver, actor):
        raise PermissionDenied(
            gettext("You requested waiver #%(waiver)s; another platform admin must %(verb)s it.")
            % {"waiver": waiver.pk, "verb": verb_text}
        )
    return waiver


def waiver_approve(*, waiver_id: int, actor: Actor, note: str = "") -> Waiver:
    """requested → approved, by a platform admin who did not request it (four eyes).

    Raises:
        PermissionDenied: not a platform admin, a token without a person, or the requester.
        IllegalTransition: not `requested` (409); Conflict: it expired already (409).
    """
    waiver = _require_reviewer(waiver_id, actor, "approve")
    if waiver.expires_at <= timezone.now():
        raise Conflict(
            gettext("Waiver #%(waiver)s expired on %(date)s; request a new one.")
            % {"waiver": waiver.pk, "date": f"{waiver.expires_at:%Y-%m-%d}"},
            code="expired",
        )
    return _decide(
        waiver_id=waiver_id,
        actor=actor,
        to=WaiverState.APPROVED,
        from_states=(WaiverState.REQUESTED,),
        note=note,
        verb="approve",
    )


def waiver_reject(*, waiver_id: int, actor: Actor, note: str = "") -> Waiver:
    """requested → rejected, by a platform admin who did not request it."""
    _require_reviewer(waiver_id, actor, "reject")
    return _decide(
        waiver_id=waiver_id,
        actor=actor,
        to=WaiverState.REJECTED,
        from_states=(WaiverState.REQUESTED,),
        note=note,
        verb="reject",
    )


def waiver_revoke(*, waiver_id: int, actor: Actor, note: str = "") -> Waiver:
    """requested|approved → revoked, by its requester or a platform admin.

    Raises:
        PermissionDenied: neither the requester nor a platform admin (403).
        IllegalTransition: already rejected or revoked (409).
    """
    waiver = Waiver.objects.filter(pk=waiver_id).first()
    if waiver is None:
        raise ValidationError(
            {"waiver": gettext("No waiver #%(waiver_id)s.") % {"waiver_id": waiver_id}}
        )
    if not (actor.is_platform_admin or _is_requester(waiver, actor)):
        raise PermissionDenied(
            gettext_lazy("Only the requester or a platform admin may revoke a waiver.")
        )
    return _decide(
        waiver_id=waiver_id,
        actor=actor,
        to=WaiverState.REVOKED,
        from_states=OPEN_STATES,
        note=note,
        verb="revoke",
    )
