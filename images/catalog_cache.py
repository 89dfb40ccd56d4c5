"""The policy engine's `Catalog` built from the database, cached briefly per process.

`images.policy.catalog` defines the pure `Catalog` dataclasses the engine checks against; this
module fills one from BaseImage, ImageVersion and Registry rows and keeps it.

`policy_catalog()` is what request handlers call: it answers from a per-process cache for
`PORTAL_CATALOG_CACHE_SECONDS` (default 5 s) without touching the database, then revalidates
with a fingerprint (3 small aggregate queries: row counts, highest ids and newest `updated_at`
of BaseImage and ImageVersion, and the registry list) and rebuilds only when it changed. A
rebuild costs 3 queries whatever the size of the catalog.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Max

from .models import BaseImage, ImageVersion, Registry
from .policy import Catalog, CatalogImage, CatalogVersion
from .references import registry_host

DEFAULT_CACHE_SECONDS = 5.0


def _fingerprint() -> tuple[Any, ...]:
    """What changes whenever an image, a version or a registry is added, edited or deleted."""
    images = BaseImage.objects.order_by().aggregate(
        n=Count("id"), top=Max("id"), last=Max("updated_at")
    )
    versions = ImageVersion.objects.order_by().aggregate(
        n=Count("id"), top=Max("id"), last=Max("updated_at")
    )
    registries = tuple(Registry.objects.order_by("id").values_list("id", "url"))
    return (
        images["n"],
        images["top"],
        images["last"],
        versions["n"],
        versions["top"],
        versions["last"],
        registries,
    )


def policy_catalog_build(registries: tuple[tuple[int, str], ...] | None = None) -> Catalog:
    """Build the Catalog from BaseImage, ImageVersion and Registry rows in 3 queries.

    Versions are ordered oldest first (by creation). An ImageVersion carrying several tags
    becomes one CatalogVersion per tag (same digest and state), so `FROM image:<any tag>`
    resolves. An image without its own registry takes the registry of its newest version.

    Args:
        registries: `(id, url)` of every registry when the caller already has them.
    """
    if registries is None:
        registries = tuple(Registry.objects.order_by("id").values_list("id", "url"))
    hosts = {pk: registry_host(url) for pk, url in registries}
    rows = BaseImage.objects.order_by("name").values(
        "id",
        "name",
        "kind",
        "os_family",
        "os_version",
        "toolchain",
        "status",
        "eol_date",
        "replacement__name",
        "registry_id",
    )
    version_rows = ImageVersion.objects.order_by("created_at", "id").values_list(
        "base_image_id", "tag", "tags", "digest", "state", "registry_id"
    )
    versions: dict[int, list[CatalogVersion]] = defaultdict(list)
    version_registry: dict[int, int] = {}
    for image_id, tag, tags, digest, state, registry_id in version_rows:
        seen = [tag] + [t for t in (tags or []) if isinstance(t, str) and t != tag]
        versions[image_id].extend(CatalogVersion(tag=t, digest=digest, state=state) for t in seen)
        version_registry[image_id] = registry_id
    images = tuple(
        CatalogImage(
            name=row["name"],
            kind=row["kind"],
            os_family=row["os_family"],
            os_version=row["os_version"],
            toolchain=row["toolchain"],
            status=row["status"],
            eol_date=row["eol_date"],
            replacement=row["replacement__name"],
            registry=hosts.get(row["registry_id"] or version_registry.get(row["id"], 0), ""),
            versions=tuple(versions.get(row["id"], ())),
        )
        for row in rows
    )
    return Catalog(images=images, registries=tuple(sorted(set(hosts.values()))))


@dataclass
class _Entry:
    catalog: Catalog
    fingerprint: tuple[Any, ...]
    checked_at: float


_lock = threading.Lock()
_entry: _Entry | None = None


def _cache_seconds() -> float:
    return float(getattr(settings, "PORTAL_CATALOG_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))


def policy_catalog() -> Catalog:
    """The current Catalog: cached for a few seconds, then revalidated by a fingerprint."""
    global _entry
    now = time.monotonic()
    entry = _entry
    if entry is not None and now - entry.checked_at < _cache_seconds():
        return entry.catalog
    fingerprint = _fingerprint()
    with _lock:
        entry = _entry
        if entry is not None and entry.fingerprint == fingerprint:
            entry.checked_at = now
            return entry.catalog
        catalog = policy_catalog_build(fingerprint[-1])
        _entry = _Entry(catalog=catalog, fingerprint=fingerprint, checked_at=now)
        return catalog


def policy_catalog_clear() -> None:
    """Forget the cached Catalog (tests, or after a bulk import in the same process)."""
    global _entry
    with _lock:
        _entry = None
