"""Retention of binary versions: which are in use, and the purge of the others' files."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from portal.actors import Actor
from portal.audit import audit_record

from ..choices import BinaryState
from ..models import BinaryVersion, Deployment, Release, Service
from ..storage import binary_delete


def binary_versions_in_use() -> set[int]:
    """Ids of binary versions a live release (newest per deployment) or a deployment uses."""
    live = Release.objects.filter(
        pk__in=Deployment.objects.annotate(last=Max("releases__id")).values("last")
    ).values_list("binary_version_id", flat=True)
    current = Deployment.objects.exclude(binary_version=None).values_list(
        "binary_version_id", flat=True
    )
    return set(live) | set(current)


def binary_versions_purge(
    *, actor: Actor, keep: int | None = None, log: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """Retention: per service keep the newest `keep` versions plus every version in use.

    Older versions become `purged` (row kept for history) and their file is deleted unless
    a remaining version has the same bytes.
    """
    keep = settings.PORTAL_BINARY_KEEP if keep is None else keep
    in_use = binary_versions_in_use()
    purged = files = 0
    for service in Service.objects.order_by("name"):
        versions = list(
            service.binary_versions.exclude(state=BinaryState.PURGED).order_by("-created_at", "-id")
        )
        for bv in versions[keep:]:
            if bv.pk in in_use:
                continue
            with transaction.atomic():
                updated = BinaryVersion.objects.filter(pk=bv.pk, state=bv.state).update(
                    state=BinaryState.PURGED
                )
                if not updated:
                    continue
                audit_record(
                    actor=actor,
                    action="binary_version.purge",
                    obj=bv,
                    before={"state": bv.state},
                    after={"state": BinaryState.PURGED},
                )
            purged += 1
            still_used = BinaryVersion.objects.filter(sha256=bv.sha256).exclude(
                state=BinaryState.PURGED
            )
            if not still_used.exists():
                binary_delete(bv.file)
                files += 1
            log(f"purged {bv} ({bv.sha256[:12]})")
    return {"purged": purged, "files_deleted": files, "kept_in_use": len(in_use)}
