"""Who uses a base image or one of its versions: deployments per environment and team.

Served to the images app's pages as an htmx fragment (`images` never imports `deployments`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q

from portal.actors import Actor

from ..models import Deployment
from .impact import _sees_all

ROW_LIMIT = 200


@dataclass
class ImageUsage:
    """The deployments on an image (rows capped), grouped counts, and what the actor sees."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    by_environment: list[dict[str, Any]] = field(default_factory=list)
    by_team: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    hidden: int = 0
    truncated: bool = False


def image_usage(
    *, actor: Actor, base_image_id: int | None = None, version_id: int | None = None
) -> ImageUsage:
    """Deployments whose runtime is `version_id` or any version of `base_image_id`.

    Everyone sees the counts per environment and team; only platform admins (and members of a
    platform team) see other teams' deployments by name. Four queries at most.
    """
    if (base_image_id is None) == (version_id is None):
        raise ValueError("pass exactly one of base_image_id and version_id")
    where = (
        Q(runtime_version_id=version_id)
        if version_id is not None
        else Q(runtime_version__base_image_id=base_image_id)
    )
    every = Deployment.objects.filter(where)
    usage = ImageUsage()
    usage.by_environment = [
        dict(row)
        for row in every.values("environment__name")
        .annotate(
            volume=Count("pk", filter=Q(mode="volume")), image=Count("pk", filter=Q(mode="image"))
        )
        .order_by("environment__name")
    ]
    usage.by_team = [
        dict(row)
        for row in every.values("service__team__name")
        .annotate(n=Count("pk"))
        .order_by("service__team__name")
    ]
    usage.total = sum(e["volume"] + e["image"] for e in usage.by_environment)
    visible = every if _sees_all(actor) else every.filter(service__team_id__in=actor.team_ids)
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in visible.order_by("service__name", "environment__name").values(
            "pk",
            "mode",
            "service__name",
            "service__team__name",
            "environment__name",
            "runtime_version__tag",
        )[: ROW_LIMIT + 1]
    ]
    usage.truncated = len(rows) > ROW_LIMIT
    usage.rows = rows[:ROW_LIMIT]
    usage.hidden = usage.total - (visible.count() if not _sees_all(actor) else usage.total)
    return usage
