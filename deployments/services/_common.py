"""What the entity modules of `deployments.services` share: name and version checks."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from images.choices import ImageKind, VersionState
from images.models import ImageVersion

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
            {"name": f"{name!r} is reserved (the page /{what}/{name}/); choose another name."}
        )


def check_runtime(version: ImageVersion, *, allow_superseded: bool = False) -> None:
    """Refuse anything but an approved runtime version (a rollback may take a superseded one)."""
    allowed = {VersionState.APPROVED} | ({VersionState.SUPERSEDED} if allow_superseded else set())
    if version.base_image.kind != ImageKind.RUNTIME:
        raise ValidationError(
            {
                "runtime_version": f"{version} is a {version.base_image.kind} image; "
                "deploy on a runtime image."
            }
        )
    if version.state not in allowed:
        hint = ""
        if version.superseded_by_id:
            hint = f" Use its replacement, image version {version.superseded_by_id}."
        raise ValidationError(
            {
                "runtime_version": f"Image version {version} is {version.state}; "
                f"only approved runtime versions can be released.{hint}"
            }
        )


def check_binary(binary: BinaryVersion, service: Service) -> None:
    """Refuse another service's binary version, or one that is yanked or purged."""
    if binary.service_id != service.pk:
        raise ValidationError(
            {"binary_version": f"{binary} belongs to {binary.service.name}, not {service.name}."}
        )
    if binary.state != BinaryState.ACTIVE:
        raise ValidationError(
            {"binary_version": f"{binary} is {binary.state} and cannot go into a new release."}
        )
