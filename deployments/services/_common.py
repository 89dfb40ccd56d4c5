"""What the entity modules of `deployments.services` share: name and version checks."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from images.choices import ImageKind, VersionState
from images.models import ImageVersion
from portal.templatetags.portal_i18n import status_label

from ..choices import BinaryState
from ..models import BinaryVersion, Service

# A digest-pinned image reference: registry[:port]/repo[:tag]@sha256:<64 hex>.
PINNED_REF = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?(?:/[a-z0-9._-]+)+(?::[\w.-]+)?@sha256:[0-9a-f]{64}\Z"
)
# Names the UI uses as path segments (/services/new/, /environments/new/).
RESERVED_NAMES = frozenset({"new"})


def refuse_reserved(name: str, what: str) -> None:
    """Refuse a name the UI uses as a path segment under /`what`/."""
    if name in RESERVED_NAMES:
        raise ValidationError(
            {
                "name": gettext(
                    "%(name)r is reserved (the page /%(what)s/%(page_name)s/); choose another name."
                )
                % {"name": name, "what": what, "page_name": name}
            }
        )


def check_runtime(version: ImageVersion, *, allow_superseded: bool = False) -> None:
    """Refuse anything but an approved runtime version (a rollback may take a superseded one)."""
    allowed = {VersionState.APPROVED} | ({VersionState.SUPERSEDED} if allow_superseded else set())
    if version.base_image.kind != ImageKind.RUNTIME:
        raise ValidationError(
            {
                "runtime_version": gettext(
                    "%(version)s is a %(kind)s image; deploy on a runtime image."
                )
                % {"version": version, "kind": status_label(version.base_image.kind)}
            }
        )
    if version.state not in allowed:
        values = {
            "version": version,
            "state": status_label(version.state),
            "replacement": version.superseded_by_id,
        }
        raise ValidationError(
            {
                "runtime_version": (
                    gettext(
                        "Image version %(version)s is %(state)s; only approved runtime versions "
                        "can be released. Use its replacement, image version %(replacement)s."
                    )
                    if version.superseded_by_id
                    else gettext(
                        "Image version %(version)s is %(state)s; only approved runtime versions "
                        "can be released."
                    )
                )
                % values
            }
        )


def check_binary(binary: BinaryVersion, service: Service) -> None:
    """Refuse another service's binary version, or one that is yanked or purged."""
    if binary.service_id != service.pk:
        raise ValidationError(
            {
                "binary_version": gettext(
                    "%(binary)s belongs to %(service)s, not %(other_service)s."
                )
                % {"binary": binary, "service": binary.service.name, "other_service": service.name}
            }
        )
    if binary.state != BinaryState.ACTIVE:
        raise ValidationError(
            {
                "binary_version": gettext(
                    "%(binary)s is %(state)s and cannot go into a new release."
                )
                % {"binary": binary, "state": status_label(binary.state)}
            }
        )
