"""The audit log: one row for every create, update and state change."""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from .actors import Actor
from .middleware import current_request_id
from .models import AuditEntry


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit row. Call it inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        actor_user=actor.user if actor.user is not None and actor.user.pk else None,
        actor_token=actor.token,
        actor_repr=str(actor)[:200],
        action=action,
        object_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:300] if obj is not None else "",
        before=before,
        after=after,
        request_id=current_request_id(),
    )
