"""Catalog rules on one image reference: the image's state and the version it pins."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from images.policy.catalog import Catalog, CatalogImage, CatalogVersion, ServiceContext
from images.policy.rules.common import (
    BLOCKED,
    DEPRECATED,
    DIGEST_UNKNOWN,
    EOL,
    LATEST,
    NOT_PINNED,
    RESTRICTED,
    SCRATCH,
    SCRATCH_LANGUAGES,
    VERSION_NOT_APPROVED,
    VERSION_SUPERSEDED,
    Hit,
    _exempt,
    _replacement,
    _suggestion_text,
)
from images.references import ImageReference
from images.texts import Text, _


def _version_hits(
    catalog: Catalog, image: CatalogImage, ref: ImageReference, line: int, shown: str
) -> tuple[list[Hit], str | None]:
    """Pinning and version-state checks: (hits, pinned reference of the referenced version)."""
    hits: list[Hit] = []
    current = image.current
    # What to do, as a whole clause: "pin it as REF", or, when there is nothing to pin yet,
    # what the user can actually do.
    pin_as: Text
    if current:
        ref_text = image.reference(current.digest)
        pin_as, use, pin_approved, move_to = (
            _("pin it as %(image)s", image=ref_text),
            _("use %(image)s", image=ref_text),
            _("pin the approved version: %(image)s", image=ref_text),
            _("move to %(image)s", image=ref_text),
        )
    else:
        pin_as = use = pin_approved = move_to = _(
            "%(image)s has no approved version yet, so there is nothing to pin: request one "
            "(New image request, name %(image)s) or build FROM another approved image of the "
            "catalog",
            image=image.name,
        )
    version: CatalogVersion | None
    if ref.digest:
        version = image.version_by_digest(ref.digest)
        if version is None:
            hits.append(
                (
                    DIGEST_UNKNOWN,
                    line,
                    _(
                        "%(shown)s: the digest is not a build of %(image)s that the catalog "
                        "knows; %(use)s.",
                        shown=shown,
                        image=image.name,
                        use=use,
                    ),
                )
            )
            return hits, None
    elif not ref.tag or ref.tag == "latest":
        hits.append(
            (
                LATEST,
                line,
                _(
                    "%(shown)s uses the tag 'latest', so every build may get a different "
                    "image: %(pin)s.",
                    shown=shown,
                    pin=pin_as,
                )
                if ref.tag
                else _(
                    "%(shown)s uses no tag, so every build may get a different image: %(pin)s.",
                    shown=shown,
                    pin=pin_as,
                ),
            )
        )
        return hits, None
    else:
        version = image.version_by_tag(ref.tag)
        if version is None:
            hits.append(
                (
                    NOT_PINNED,
                    line,
                    _(
                        "%(shown)s: tag %(tag)s is not a catalog version of %(image)s and tags "
                        "move; %(pin)s.",
                        shown=shown,
                        tag=repr(ref.tag),
                        image=image.name,
                        pin=pin_approved,
                    ),
                )
            )
            return hits, None
        if version.state == "approved":
            hits.append(
                (
                    NOT_PINNED,
                    line,
                    _(
                        "%(shown)s is not pinned by digest; use %(image)s.",
                        shown=shown,
                        image=image.reference(version.digest),
                    ),
                )
            )
            return hits, image.reference(version.digest)
    pinned = image.reference(version.digest)
    if version.state in ("revoked", "candidate"):
        hits.append(
            (
                VERSION_NOT_APPROVED,
                line,
                _(
                    "%(shown)s: version %(tag)s of %(image)s is revoked, not approved; %(use)s.",
                    shown=shown,
                    tag=version.tag,
                    image=image.name,
                    use=use,
                )
                if version.state == "revoked"
                else _(
                    "%(shown)s: version %(tag)s of %(image)s is a candidate, not approved; "
                    "%(use)s.",
                    shown=shown,
                    tag=version.tag,
                    image=image.name,
                    use=use,
                ),
            )
        )
    elif version.state == "superseded":
        hits.append(
            (
                VERSION_SUPERSEDED,
                line,
                _(
                    "%(shown)s: version %(tag)s of %(image)s is superseded; %(move)s.",
                    shown=shown,
                    tag=version.tag,
                    image=image.name,
                    move=move_to,
                ),
            )
        )
    return hits, pinned


def _image_hits(
    catalog: Catalog,
    image: CatalogImage,
    shown: str,
    line: int,
    service: ServiceContext | None,
    today: datetime.date,
) -> Iterator[Hit]:
    if image.name == "scratch":
        language = (service.language if service else "").strip().lower()
        if language not in SCRATCH_LANGUAGES and not _exempt(service, SCRATCH, "scratch"):
            yield (
                SCRATCH,
                line,
                _(
                    "FROM scratch is only recommended for static C/C++ binaries: %(use)s.",
                    use=_suggestion_text(catalog, "runtime", ""),
                ),
            )
        return
    if image.status == "blocked":
        yield (
            BLOCKED,
            line,
            _(
                "%(shown)s: %(image)s is blocked; %(move)s.",
                shown=shown,
                image=image.name,
                move=_replacement(catalog, image),
            ),
        )
        return
    if image.status == "restricted" and not _exempt(
        service, RESTRICTED, image.os_family, image.name, image.short_name
    ):
        use = _suggestion_text(catalog, image.kind, "")
        yield (
            RESTRICTED,
            line,
            _(
                "%(shown)s: %(image)s is restricted and service %(service)s has no exception "
                "for it; %(use)s or ask the platform team for an exception.",
                shown=shown,
                image=image.name,
                service=repr(service.name),
                use=use,
            )
            if service
            else _(
                "%(shown)s: %(image)s is restricted and this Dockerfile has no exception for "
                "it; %(use)s or ask the platform team for an exception.",
                shown=shown,
                image=image.name,
                use=use,
            ),
        )
    if image.eol_date is not None and image.eol_date < today:
        yield (
            EOL,
            line,
            _(
                "%(shown)s: %(image)s reached end of life on %(date)s; %(move)s.",
                shown=shown,
                image=image.describe(),
                date=image.eol_date.isoformat(),
                move=_replacement(catalog, image),
            ),
        )
    elif image.status == "deprecated":
        yield (
            DEPRECATED,
            line,
            _(
                "%(shown)s: %(image)s is deprecated; %(move)s.",
                shown=shown,
                image=image.name,
                move=_replacement(catalog, image),
            ),
        )
