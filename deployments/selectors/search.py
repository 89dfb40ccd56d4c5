"""The navigation's one search box: catalog images, image versions by digest prefix, services,
binary versions by sha256 prefix, and image requests — each scoped to what the actor may read.

Composed here (the top layer) because it spans both apps. One query per group (at most five),
each capped at `GROUP_LIMIT` (+1 to tell that there are more), whatever the number of rows.
A digest or sha256 prefix must be at least `MIN_HEX_PREFIX` hex characters: a shorter one
matches nearly everything and would tell nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from images.models import BaseImage, ImageVersion
from images.selectors import image_request_list_for_actor
from portal.actors import Actor

from ..models import BinaryVersion, Service
from . import team_readable

GROUP_LIMIT = 10
MIN_QUERY = 2
MAX_QUERY = 200
MIN_HEX_PREFIX = 4
_HEX = re.compile(r"^(?:sha256:)?([0-9a-f]+)$")
_REQUEST_ID = re.compile(r"^#?(\d{1,9})$")

# Group key → (title, token scope that may read it).
GROUPS: dict[str, tuple[Any, str]] = {
    "images": (gettext_lazy("Base images"), "images:read"),
    "versions": (gettext_lazy("Image versions (digest)"), "images:read"),
    "services": (gettext_lazy("Services"), "services:read"),
    "binaries": (gettext_lazy("Binary versions (sha256)"), "binaries:read"),
    "requests": (gettext_lazy("Image requests"), "images:read"),
}


class SearchQueryError(ValueError):
    """The query cannot be searched (too short, too long): a 400 with this message."""


@dataclass
class SearchResults:
    """Hits per group (only the groups the actor may read), as plain values."""

    query: str
    groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Hits shown over every group."""
        return sum(len(g["items"]) for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """The API's body."""
        return {
            "query": self.query,
            "total": self.total,
            "groups": [{**g, "title": str(g["title"])} for g in self.groups],
            "group_limit": GROUP_LIMIT,
        }


def search_normalise(raw: str) -> str:
    """The query trimmed, or SearchQueryError when it is too short or too long."""
    query = (raw or "").strip()
    if len(query) > MAX_QUERY:
        raise SearchQueryError(_("Search for at most %(n)d characters.") % {"n": MAX_QUERY})
    if len(query) < MIN_QUERY:
        raise SearchQueryError(_("Type at least %(n)d characters to search.") % {"n": MIN_QUERY})
    return query


def _hex_prefix(query: str) -> str | None:
    match = _HEX.match(query.lower())
    if match is None or len(match.group(1)) < MIN_HEX_PREFIX:
        return None
    return match.group(1)


def _group(key: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": key,
        "title": GROUPS[key][0],
        "items": rows[:GROUP_LIMIT],
        "more": len(rows) > GROUP_LIMIT,
    }


def _may_read(actor: Actor, key: str) -> bool:
    token = actor.token
    return token is None or token.has_scope(GROUPS[key][1])


def search_for_actor(*, query: str, actor: Actor) -> SearchResults:
    """Search every group the actor may read for `query` (already normalised)."""
    results = SearchResults(query=query)
    hex_prefix = _hex_prefix(query)
    limit = GROUP_LIMIT + 1
    if _may_read(actor, "images"):
        images = BaseImage.objects.filter(
            Q(name__icontains=query) | Q(toolchain__icontains=query)
        ).order_by("name")[:limit]
        results.groups.append(
            _group(
                "images",
                [
                    {
                        "title": image.name,
                        "detail": f"{image.get_kind_display()} · {image.get_status_display()}",
                        "url": reverse("images:base-image-detail", args=[image.pk]),
                        "id": image.pk,
                    }
                    for image in images
                ],
            )
        )
    if _may_read(actor, "versions") and hex_prefix:
        versions = (
            ImageVersion.objects.filter(digest__startswith=f"sha256:{hex_prefix}")
            .select_related("base_image")
            .only("id", "tag", "digest", "state", "base_image__name")
            .order_by("digest")[:limit]
        )
        results.groups.append(
            _group(
                "versions",
                [
                    {
                        "title": f"{v.base_image.name}:{v.tag}",
                        "detail": f"{v.digest[:19]}… · {v.get_state_display()}",
                        "url": reverse("images:image-version-detail", args=[v.pk]),
                        "id": v.pk,
                        "digest": v.digest,
                    }
                    for v in versions
                ],
            )
        )
    if _may_read(actor, "services"):
        services = (
            Service.objects.filter(team_readable(actor, "team"))
            .filter(Q(name__icontains=query) | Q(description__icontains=query))
            .select_related("team")
            .only("id", "name", "team__name")
            .order_by("name")[:limit]
        )
        results.groups.append(
            _group(
                "services",
                [
                    {
                        "title": s.name,
                        "detail": s.team.name,
                        "url": reverse("deployments:service-detail", args=[s.name]),
                        "id": s.pk,
                    }
                    for s in services
                ],
            )
        )
    if _may_read(actor, "binaries") and hex_prefix:
        binaries = (
            BinaryVersion.objects.filter(team_readable(actor, "service__team"))
            .filter(sha256__startswith=hex_prefix)
            .select_related("service")
            .only("id", "version", "arch", "sha256", "state", "service__name")
            .order_by("sha256")[:limit]
        )
        results.groups.append(
            _group(
                "binaries",
                [
                    {
                        "title": f"{b.service.name} {b.version} ({b.arch})",
                        "detail": f"sha256:{b.sha256[:12]}… · {b.get_state_display()}",
                        "url": reverse("deployments:service-detail", args=[b.service.name])
                        + f"?q={b.sha256}",
                        "id": b.pk,
                        "sha256": b.sha256,
                    }
                    for b in binaries
                ],
            )
        )
    if _may_read(actor, "requests"):
        match = Q(name__icontains=query) | Q(tag__icontains=query)
        request_id = _REQUEST_ID.match(query)
        if request_id:
            match |= Q(pk=int(request_id.group(1)))
        requests = (
            image_request_list_for_actor(actor)
            .select_related(None)
            .filter(match)
            .only("id", "name", "tag", "state")
            .order_by("-created_at", "-id")[:limit]
        )
        results.groups.append(
            _group(
                "requests",
                [
                    {
                        "title": f"#{r.pk} {r.name}:{r.tag}",
                        "detail": r.get_state_display(),
                        "url": reverse("images:image-request-detail", args=[r.pk]),
                        "id": r.pk,
                    }
                    for r in requests
                ],
            )
        )
    return results
