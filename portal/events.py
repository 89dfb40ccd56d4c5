"""The portal's events: the one call the apps make when something a team may want to hear
about happened (`event_emit`). Subscribed teams get it as a signed CloudEvent (webhooks).

Call it inside the transaction of the change: the deliveries are written with it and their
jobs are sent on commit, so a rolled-back change announces nothing.
"""

from __future__ import annotations

from typing import Any

from .models import Team
from .webhooks.choices import EventType

__all__ = ["EventType", "event_emit", "event_wanted"]


def event_emit(
    *,
    type: str,  # noqa: A002 - the CloudEvents attribute's own name
    team: Team | None,
    subject: str,
    data: dict[str, Any],
    public: bool = False,
) -> int:
    """Announce an event of `type` about `subject` (a path such as `image-versions/12`).

    `team` owns the subject; a `public` event (the catalog's) reaches every team's
    subscriptions, any other the owning team's and the platform teams'. Returns the number
    of deliveries made.

    Raises:
        ValueError: an unknown event type (a programming error, not user input).
    """
    if type not in EventType.values:
        raise ValueError(f"Unknown event type {type!r}; add it to portal.webhooks.choices.")
    from .webhooks.services import webhook_event_fanout

    return len(
        webhook_event_fanout(event_type=type, team=team, subject=subject, data=data, public=public)
    )


def event_wanted(type: str) -> bool:  # noqa: A002 - as in event_emit
    """Whether any active subscription wants `type` (one query): callers whose event data
    costs queries to gather ask this first."""
    from .webhooks.models import WebhookSubscription

    return any(
        type in (types or [])
        for types in WebhookSubscription.objects.filter(active=True).values_list(
            "event_types", flat=True
        )
    )
