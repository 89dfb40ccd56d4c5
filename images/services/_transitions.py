"""How every image request service moves a request: guards, the guarded UPDATE, its record.

Every transition is a guarded conditional UPDATE (`filter(pk=, state__in=old).update(...)`;
zero rows → `IllegalTransition`, a 409) and writes a timeline event and an audit row in the
same transaction. The allowed transitions are listed in the `ImageRequest` docstring.

Private to `images.services`: the request, build and publish services share these.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.events import EventType, event_emit
from portal.jobs import IllegalTransition
from portal.templatetags.portal_i18n import status_label

from ..models import ImageRequest, ImageRequestEvent
from ..selectors import image_request_is_requester, image_request_may_edit

# What a guard's `what` stands for, completing "… may %(what)s image requests." and the like.
_VERBS = {
    "edit": pgettext_lazy("may … an image request", "edit"),
    "submit": pgettext_lazy("may … an image request", "submit"),
    "review": pgettext_lazy("may … an image request", "review"),
    "reject": pgettext_lazy("may … an image request", "reject"),
    "approve": pgettext_lazy("may … an image request", "approve"),
    "publish": pgettext_lazy("may … an image request", "publish"),
}


def _verb(what: str) -> str:
    verb = _VERBS.get(what)
    return str(verb) if verb is not None else what


def require_editor(request: ImageRequest, actor: Actor, what: str) -> None:
    """Refuse (403) unless `actor` is the requester or a developer of the request's team."""
    if not image_request_may_edit(request, actor):
        raise PermissionDenied(
            gettext("Only the requester or a developer of team %(team)s may %(what)s this request.")
            % {"team": request.team or "?", "what": _verb(what)}
        )


def require_reviewer(request: ImageRequest, actor: Actor, what: str) -> None:
    """Refuse (403) unless `actor` is a platform admin with a person behind it (and, to
    approve or publish, not the person who requested it, by session or by token: four eyes).

    `what` is one of `_VERBS`' keys; the messages show its phrase in the request's language."""
    if not actor.is_platform_admin:
        raise PermissionDenied(
            gettext("Only a platform admin may %(what)s image requests.") % {"what": _verb(what)}
        )
    if not actor.is_system and actor.person is None:
        raise PermissionDenied(
            gettext(
                "This token has no person behind it, so it cannot %(what)s image requests; use "
                "a token a platform admin created."
            )
            % {"what": _verb(what)}
        )
    if what in ("approve", "publish") and image_request_is_requester(request, actor):
        raise PermissionDenied(
            gettext(
                "You requested %(reference)s (in the UI or with one of your tokens); another "
                "reviewer must %(what)s it."
            )
            % {"reference": request.reference, "what": _verb(what)}
        )


def record_event(
    request: ImageRequest, kind: str, actor: Actor, text: str = ""
) -> ImageRequestEvent:
    """Add an event to the request's timeline."""
    return ImageRequestEvent.objects.create(
        request=request,
        kind=kind,
        actor_user=actor.user if actor.user is not None and actor.user.pk else None,
        actor_repr=str(actor)[:200],
        text=text,
    )


def record_audit(request: ImageRequest, actor: Actor, verb: str, before: str, **after: Any) -> None:
    """Audit a state change of the request (`image_request.<verb>`)."""
    audit_record(
        actor=actor,
        action=f"image_request.{verb}",
        obj=request,
        before={"state": before},
        after={"state": request.state, **after},
    )


def transition(
    request: ImageRequest, *, from_states: set[str], to: str, **fields: Any
) -> ImageRequest:
    """Guarded state change; raises IllegalTransition (409) when the request is elsewhere."""
    try:
        with transaction.atomic():  # a savepoint: a constraint violation must not poison the caller
            updated = ImageRequest.objects.filter(pk=request.pk, state__in=from_states).update(
                state=to, updated_at=timezone.now(), **fields
            )
    except IntegrityError as exc:
        raise Conflict(
            gettext(
                "Another request for %(reference)s is already open; finish or withdraw it first."
            )
            % {"reference": request.reference},
            code="duplicate",
        ) from exc
    current = ImageRequest.objects.get(pk=request.pk)
    if not updated:
        allowed = ", ".join(sorted(from_states))
        raise IllegalTransition(
            gettext(
                "Request #%(request_id)s is %(state)s; it cannot become %(to)s (allowed from: "
                "%(allowed)s)."
            )
            % {
                "request_id": request.pk,
                "state": status_label(current.state),
                "to": to,
                "allowed": allowed,
            }
        )
    event_emit(
        type=EventType.IMAGE_REQUEST_STATE_CHANGED,
        team=current.team,
        subject=f"image-requests/{current.pk}",
        data={
            "id": current.pk,
            "reference": current.reference,
            "from": request.state,
            "to": current.state,
        },
    )
    return current
