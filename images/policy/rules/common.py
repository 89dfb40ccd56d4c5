"""Rule ids, per-stage facts and how a rule finds or suggests a catalog image."""

from __future__ import annotations

import re
from dataclasses import dataclass

from images.policy.catalog import Catalog, CatalogImage, ServiceContext
from images.references import ImageReference, ReferenceError
from images.texts import Message, Text, _

NOT_APPROVED = "BIP002"
REGISTRY_NOT_APPROVED = "BIP003"
RESTRICTED = "BIP004"
SCRATCH = "BIP005"
EOL = "BIP006"
DEPRECATED = "BIP007"
BLOCKED = "BIP008"
LATEST = "BIP009"
NOT_PINNED = "BIP010"
FINAL_NOT_RUNTIME = "BIP011"
BUILDER_NOT_BUILD = "BIP012"
RUNTIME_ENV = "BIP013"
PIPE_TO_SHELL = "BIP014"
VERSION_NOT_APPROVED = "BIP015"
VERSION_SUPERSEDED = "BIP016"
DIGEST_UNKNOWN = "BIP017"

PURPOSES = frozenset({"service", "runtime-recipe", "build-recipe"})
RECIPE_PURPOSES = frozenset({"runtime-recipe", "build-recipe"})
RUNTIME_ENV_VARS = ("TZ", "LANG", "LC_ALL")
RUNTIME_ENV_DEFAULTS = {"TZ": "Asia/Shanghai", "LANG": "en_US.utf8", "LC_ALL": "en_US.utf8"}
SCRATCH_LANGUAGES = frozenset({"c", "c++", "cpp", "cxx"})
SCRATCH_IMAGE = CatalogImage(name="scratch", kind="runtime", os_family="none")
# Words in an image name or tag that reveal its OS family.
_FAMILY_HINTS = {
    "debian": "debian",
    "bookworm": "debian",
    "bullseye": "debian",
    "buster": "debian",
    "trixie": "debian",
    "slim": "debian",
    "centos": "centos",
    "rocky": "rocky",
    "rockylinux": "rocky",
    "alma": "almalinux",
    "almalinux": "almalinux",
    "ubuntu": "ubuntu",
    "jammy": "ubuntu",
    "focal": "ubuntu",
    "noble": "ubuntu",
    "alpine": "alpine",
    "openeuler": "openeuler",
    "anolis": "anolis",
    "anolisos": "anolis",
    "kylin": "kylin",
}
_WORD_RE = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class StageInfo:
    """What the engine learnt about one stage."""

    index: int
    name: str
    base: str
    line: int
    platform: str
    parent_stage: int | None
    resolved: CatalogImage | None
    pinned_ref: str | None


Hit = tuple[str, int, Message]


def _exempt(service: ServiceContext | None, *keys: str) -> bool:
    return service is not None and any(key in service.exceptions for key in keys)


def guess_family(ref: ImageReference) -> str:
    """The OS family an unknown image name or tag hints at, or ""."""
    for word in _WORD_RE.findall(f"{ref.repository} {ref.tag}".lower()):
        if word in _FAMILY_HINTS:
            return _FAMILY_HINTS[word]
    return ""


def suggest(catalog: Catalog, kind: str, family: str, hint: str = "") -> CatalogImage | None:
    """The closest approved image: same kind and OS family, then same kind, then any."""
    best: tuple[int, str] | None = None
    chosen = None
    for image in catalog.images:
        if image.status != "approved" or image.name == "scratch":
            continue
        score = (
            (4 if image.kind == kind else 0)
            + (2 if family and image.os_family == family else 0)
            + (1 if hint and hint in image.name else 0)
            + (1 if image.current else 0)
        )
        key = (-score, image.name)
        if best is None or key < best:
            best, chosen = key, image
    return chosen


def _error(exc: ReferenceError) -> Text | str:
    """A reference error's message, as a `Text` when it is one (translated with the finding)."""
    message = exc.args[0] if exc.args else ""
    return message if isinstance(message, Text) else str(message)


def _suggested(catalog: Catalog, kind: str, family: str, hint: str = "") -> str | None:
    """How to name the closest approved image in a message (None: the catalog has none)."""
    image = suggest(catalog, kind, family, hint)
    if image is None:
        return None
    if image.current is None:
        return image.describe()
    return f"{image.current_reference} ({image.facts or image.name})"


def _none_approved(kind: str) -> Text:
    """The clause for a catalog without an approved image of `kind`."""
    if kind == "runtime":
        return _("the catalog has no approved runtime image yet: request one in the portal")
    if kind == "build":
        return _("the catalog has no approved build image yet: request one in the portal")
    return _("the catalog has no approved image of this kind yet: request one in the portal")


def _suggestion_text(catalog: Catalog, kind: str, family: str, hint: str = "") -> Text:
    target = _suggested(catalog, kind, family, hint)
    if target is None:
        return _none_approved(kind)
    return _("use %(image)s", image=target)


def resolve(catalog: Catalog, ref: ImageReference, kind: str) -> CatalogImage | None:
    """The catalog image a reference names: exact name, else short name preferring `kind`."""
    image = catalog.by_name.get(ref.repository)
    if image is not None:
        return image
    candidates = catalog.by_short_name.get(ref.short_name, ())
    if not candidates:
        return None
    ranked = sorted(
        candidates,
        key=lambda c: (c.kind != kind, c.status != "approved", c.name),
    )
    return ranked[0]


def _replacement(catalog: Catalog, image: CatalogImage) -> Text:
    if image.replacement:
        target = catalog.by_name.get(image.replacement)
        if target is not None:
            if target.current is None:
                return _("move to %(image)s", image=target.describe())
            return _(
                "move to %(image)s",
                image=f"{target.current_reference} ({target.facts or target.name})",
            )
        return _("move to %(image)s", image=image.replacement)
    suggested = _suggested(catalog, image.kind, "", "")
    if suggested is None:
        return _none_approved(image.kind)
    return _("move to %(image)s", image=suggested)
