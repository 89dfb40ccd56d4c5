"""Catalog writes: entries and their derived status, versions found in (or pushed to) registries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from portal.actors import Actor
from portal.audit import audit_record

from ..choices import ImageStatus, OsFamily, VersionState
from ..lifecycle import lifecycle_for
from ..models import BaseImage, ImageVersion, Registry
from ..status_notes import ALPINE_NOTE, EOL_NOTE, SCRATCH_NOTE


@dataclass(frozen=True)
class DerivedStatus:
    """What the standard says about an image's OS, before any manual decision."""

    status: str
    note: str
    eol_date: dt.date | None
    replacement_family: str = ""
    replacement_version: str = ""


def derive_status(*, os_family: str, os_version: str, status: str, today: dt.date) -> DerivedStatus:
    """Apply the standard's rules: alpine → restricted; scratch → note; EOL → deprecated.

    A manual `blocked` is kept; a manual `restricted` or `deprecated` is never relaxed here.
    """
    life = lifecycle_for(os_family, os_version) if os_family != OsFamily.NONE else None
    eol = life.eol if life else None
    if os_family == OsFamily.ALPINE:
        new_status: str = (
            ImageStatus.BLOCKED if status == ImageStatus.BLOCKED else ImageStatus.RESTRICTED
        )
        return DerivedStatus(new_status, ALPINE_NOTE, eol, "debian", "12")
    if os_family == OsFamily.NONE:
        return DerivedStatus(status, SCRATCH_NOTE, None)
    if life is not None and life.is_eol(today):
        new_status = status if status == ImageStatus.BLOCKED else ImageStatus.DEPRECATED
        family = OsFamily(life.family).label if life.family in OsFamily.values else life.family
        note = EOL_NOTE % {
            "family": family,
            "version": life.version,
            "date": life.eol.isoformat(),
        }
        return DerivedStatus(
            new_status, note, eol, life.replacement_family, life.replacement_version
        )
    return DerivedStatus(status, "", eol)


def _snapshot(image: BaseImage) -> dict[str, Any]:
    data = model_to_dict(
        image,
        fields=[
            "name",
            "kind",
            "os_family",
            "os_version",
            "toolchain",
            "status",
            "status_note",
            "description",
        ],
    )
    data["eol_date"] = image.eol_date.isoformat() if image.eol_date else None
    data["replacement"] = image.replacement.name if image.replacement is not None else None
    return data


def _pick_replacement(image: BaseImage, derived: DerivedStatus) -> BaseImage | None:
    if image.replacement_id or not derived.replacement_family:
        return image.replacement
    candidates = BaseImage.objects.filter(kind=image.kind, status=ImageStatus.APPROVED).exclude(
        pk=image.pk
    )
    return (
        candidates.filter(
            os_family=derived.replacement_family, os_version=derived.replacement_version
        ).first()
        or candidates.filter(os_family=derived.replacement_family).first()
        or candidates.filter(os_family=OsFamily.DEBIAN).first()
    )


def base_image_apply_lifecycle(
    *, image: BaseImage, actor: Actor, today: dt.date | None = None
) -> BaseImage:
    """Recompute the derived status, note, EOL date and replacement; audit any change."""
    today = today or timezone.localdate()
    before = _snapshot(image)
    derived = derive_status(
        os_family=image.os_family, os_version=image.os_version, status=image.status, today=today
    )
    image.status = derived.status
    image.status_note = derived.note
    image.eol_date = derived.eol_date
    image.replacement = _pick_replacement(image, derived)
    image.full_clean()
    after = _snapshot(image)
    if after != before:
        with transaction.atomic():
            image.save()
            audit_record(
                actor=actor, action="base_image.lifecycle", obj=image, before=before, after=after
            )
    return image


def base_image_create(
    *,
    actor: Actor,
    name: str,
    kind: str,
    os_family: str,
    os_version: str,
    owner_team: Any,
    toolchain: str = "",
    description: str = "",
    registry: Registry | None = None,
    replacement: BaseImage | None = None,
    status: str = ImageStatus.APPROVED,
) -> BaseImage:
    """Add a catalog entry, with its derived status applied."""
    derived = derive_status(
        os_family=os_family, os_version=os_version, status=status, today=timezone.localdate()
    )
    image = BaseImage(
        name=name,
        kind=kind,
        os_family=os_family,
        os_version=os_version,
        toolchain=toolchain,
        owner_team=owner_team,
        description=description,
        registry=registry,
        status=derived.status,
        status_note=derived.note,
        eol_date=derived.eol_date,
        replacement=replacement,
    )
    image.replacement = _pick_replacement(image, derived)
    image.full_clean()
    with transaction.atomic():
        image.save()
        audit_record(actor=actor, action="base_image.create", obj=image, after=_snapshot(image))
    return image


def image_version_record(
    *,
    actor: Actor,
    image: BaseImage,
    registry: Registry,
    tag: str,
    digest: str,
    size: int | None,
    arch: str,
    recipe: str = "",
    state: str = VersionState.CANDIDATE,
) -> tuple[ImageVersion, bool]:
    """Record a digest found in (or pushed to) a registry; return (version, created).

    A digest is immutable: when it is already known, only a new tag is added to it.
    """
    with transaction.atomic():
        version = ImageVersion.objects.select_for_update().filter(digest=digest).first()
        if version is not None:
            if tag not in version.tags:
                before = {"tags": list(version.tags)}
                version.tags = sorted({*version.tags, tag})
                version.save(update_fields=["tags", "updated_at"])
                audit_record(
                    actor=actor,
                    action="image_version.tag",
                    obj=version,
                    before=before,
                    after={"tags": version.tags},
                )
            return version, False
        version = ImageVersion(
            base_image=image,
            registry=registry,
            tag=tag,
            tags=[tag],
            digest=digest,
            size=size,
            arch=arch,
            recipe=recipe,
            state=state,
        )
        version.full_clean()
        version.save()
        audit_record(
            actor=actor,
            action="image_version.create",
            obj=version,
            after={"tag": tag, "digest": digest, "size": size, "arch": arch, "state": state},
        )
    return version, True
