"""CloudEvents 1.0 in structured mode (JSON): the envelope and its one serialisation (pure)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
SPEC_VERSION = "1.0"
# CloudEvents extension attribute names: lower-case a-z and 0-9, at most 20 characters.
TEAM_ATTRIBUTE = "portalteam"
_TYPE = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+\Z")


def cloudevent(
    *,
    event_id: str,
    source: str,
    type: str,  # noqa: A002 - CloudEvents' own attribute name
    subject: str,
    time: datetime,
    data: dict[str, Any],
    team: str = "",
) -> dict[str, Any]:
    """The event as a dict with the required attributes (specversion, id, source, type) and
    subject, time, datacontenttype, the team extension and the data.

    Raises:
        ValueError: an empty id or source, or a type that is not reverse-DNS.
    """
    if not event_id or not source:
        raise ValueError("A CloudEvent needs an id and a source.")
    if not _TYPE.match(type):
        raise ValueError(f"Event type {type!r} is not a reverse-DNS name.")
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": type,
        "subject": subject,
        "time": time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
    }
    if team:
        event[TEAM_ATTRIBUTE] = team
    event["data"] = data
    return event


def cloudevent_body(event: dict[str, Any]) -> str:
    """The exact text that is sent and signed (compact, keys in order, UTF-8)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str)
