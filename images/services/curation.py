"""Catalog curation by platform admins: an entry's status and replacement, and revoking a
version with a reason. Each change is audited; the pages show what it breaks first."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.actors import Actor
from portal.audit import audit_record
from portal.jobs import IllegalTransition
from portal.selectors import role_holders

from ..choices import ImageStatus, VersionState
from ..models import BaseImage, ImageVersion
from .catalog import _snapshot
from .publish import image_version_announce_revoked

MAX_REASON = 2000


def _require_admin(actor: Actor, what: str) -> None:
    if not actor.is_platform_admin or actor.person is None:
        admins = ", ".join(role_holders(minimum="platform-admin")) or "-"
        raise PermissionDenied(
            _("Only a platform admin may %(what)s (platform admins: %(names)s).")
            % {"what": what, "names": admins}
        )


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why: the reason is shown to the teams affected.")})
    if len(reason) > MAX_REASON:
        raise ValidationError(
            {"reason": _("The reason is over %(n)d characters.") % {"n": MAX_REASON}}
        )
    return reason


def base_image_curate(
    *,
    actor: Actor,
    image: BaseImage,
    status: str,
    reason: str,
    replacement: BaseImage | None = None,
) -> BaseImage:
    """Set an entry's status (approved, deprecated, restricted, blocked) and replacement.

    Raises:
        PermissionDenied: not a platform admin (403).
        ValidationError: an unknown status, no reason, a replacement that is the image itself,
            not approved, or of another kind (400).
    """
    _require_admin(actor, _("curate the catalog"))
    if status not in ImageStatus.values:
        raise ValidationError(
            {
                "status": _("Unknown status %(s)s; use one of %(all)s.")
                % {"s": str(status)[:40], "all": ", ".join(ImageStatus.values)}
            }
        )
    note = _reason(reason)
    if replacement is not None:
        if replacement.pk == image.pk:
            raise ValidationError({"replacement": _("An image cannot replace itself.")})
        if replacement.status != ImageStatus.APPROVED:
            raise ValidationError({"replacement": _("The replacement must be an approved image.")})
        if replacement.kind != image.kind:
            raise ValidationError(
                {
                    "replacement": _("The replacement must be a %(kind)s image too.")
                    % {"kind": str(image.get_kind_display()).lower()}
                }
            )
    if status != ImageStatus.APPROVED and replacement is None and image.replacement is None:
        raise ValidationError({"replacement": _("Name the image teams should move to instead.")})
    before = _snapshot(image)
    image.status = status
    image.status_note = note
    if replacement is not None:
        image.replacement = replacement
    elif status == ImageStatus.APPROVED:
        image.replacement = None
    image.full_clean()
    with transaction.atomic():
        image.save()
        audit_record(
            actor=actor,
            action="base_image.curate",
            obj=image,
            before=before,
            after={**_snapshot(image), "reason": note},
        )
    return image


def image_version_revoke_preview(version: ImageVersion) -> dict[str, Any]:
    """What revoking `version` breaks, as far as the images app knows (the deployments app
    adds its deployments on the page): versions built FROM it, and whether it is current."""
    built_from = list(
        ImageVersion.objects.filter(base_digest=version.digest)
        .exclude(state=VersionState.REVOKED)
        .select_related("base_image")
        .order_by("base_image__name", "tag")
    )
    return {
        "current": version.state == VersionState.APPROVED,
        "built_from": [f"{v.base_image.name}:{v.tag}" for v in built_from],
        "built_from_versions": built_from,
    }


def image_version_revoke(*, actor: Actor, version: ImageVersion, reason: str) -> ImageVersion:
    """Revoke a version (any state but revoked): it may no longer be built FROM or deployed.

    Raises:
        PermissionDenied: not a platform admin (403).
        ValidationError: no reason (400).
        IllegalTransition: already revoked (409).
    """
    _require_admin(actor, _("revoke image versions"))
    note = _reason(reason)
    preview = image_version_revoke_preview(version)
    with transaction.atomic():
        before = version.state
        updated = (
            ImageVersion.objects.filter(pk=version.pk)
            .exclude(state=VersionState.REVOKED)
            .update(state=VersionState.REVOKED, updated_at=timezone.now())
        )
        if not updated:
            raise IllegalTransition(_("Version %(tag)s is already revoked.") % {"tag": version.tag})
        version.refresh_from_db()
        audit_record(
            actor=actor,
            action="image_version.revoke",
            obj=version,
            before={"state": before},
            after={"state": version.state, "reason": note, "built_from": preview["built_from"]},
        )
        image_version_announce_revoked(version=version, reason=note)
    return version
