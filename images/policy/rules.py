"""The base-image standard as rules over parsed stages and the catalog.

Each check yields `(rule_id, line, message)`; the engine attaches severities from policy data.
"""

from __future__ import annotations

import datetime
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

from images.policy.catalog import Catalog, CatalogImage, CatalogVersion, ServiceContext
from images.policy.escapes import EXTERNAL_COPY_FROM, copy_from_value, instruction_escapes
from images.policy.parser import MALFORMED_FROM, Instruction, ParsedDockerfile, ParsedStage
from images.references import ImageReference, ReferenceError, parse_reference
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

_PIPE_TO_SHELL_RE = re.compile(
    r"\b(?:curl|wget)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+)?"
    r"(?:/usr)?(?:/bin/)?(?:ba|da|z|k|a)?sh\b"
    r"|\b(?:ba|da|z|k|a)?sh\s+(?:-c\s+)?[\"']?(?:\$\(|<\(|`)\s*(?:curl|wget)\b"
)
_ENV_KEY_RE = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=")
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


def final_chain(stages: tuple[ParsedStage, ...]) -> frozenset[int]:
    """Indexes of the final stage and the stages it is built FROM (transitively)."""
    chain: set[int] = set()
    index: int | None = len(stages) - 1 if stages else None
    while index is not None and index not in chain:
        chain.add(index)
        index = stages[index].parent_stage
    return frozenset(chain)


def _env_keys(args: str) -> Iterator[str]:
    first = args.split(None, 1)[0] if args.strip() else ""
    if "=" not in first:  # legacy `ENV KEY value`
        if first:
            yield first
        return
    try:
        tokens = shlex.split(args, posix=True)
    except ValueError:
        yield from _ENV_KEY_RE.findall(args)
        return
    for token in tokens:
        key, sep, _value = token.partition("=")
        if sep:
            yield key


def analyse(
    parsed: ParsedDockerfile,
    *,
    catalog: Catalog,
    service: ServiceContext | None,
    purpose: str,
    today: datetime.date,
) -> tuple[list[Hit], list[StageInfo]]:
    """Apply the standard to every stage. Returns rule hits and per-stage facts."""
    hits: list[Hit] = []
    infos: list[StageInfo] = []
    stages = parsed.stages
    chain = final_chain(stages)
    last = len(stages) - 1
    for stage in stages:
        needed = "runtime" if stage.index in chain else "build"
        resolved: CatalogImage | None = None
        pinned: str | None = None
        if stage.parent_stage is not None:
            resolved = infos[stage.parent_stage].resolved
            pinned = infos[stage.parent_stage].pinned_ref
        elif stage.valid and stage.base:
            resolved, pinned = _base_hits(stage, catalog, service, needed, today, hits)
        if resolved is not None:
            _kind_hits(stage, resolved, catalog, needed, purpose, last, hits)
        for instruction in stage.instructions:
            if purpose in RECIPE_PURPOSES:
                hits.extend(_escape_hits(instruction, parsed, catalog, service, today))
            if instruction.keyword == "RUN":
                text = f"{instruction.args}\n{instruction.heredocs}"
                match = _PIPE_TO_SHELL_RE.search(text)
                if match:
                    hits.append(
                        (
                            PIPE_TO_SHELL,
                            instruction.line,
                            _(
                                "RUN pipes a download into a shell (%(command)s): download to "
                                "a file, verify its sha256, then run it.",
                                command=repr(match.group(0).strip()[:80]),
                            ),
                        )
                    )
        infos.append(
            StageInfo(
                index=stage.index,
                name=stage.name,
                base=stage.base or stage.base_raw,
                line=stage.line,
                platform=stage.platform,
                parent_stage=stage.parent_stage,
                resolved=resolved,
                pinned_ref=pinned,
            )
        )
    if purpose == "runtime-recipe" and stages:
        keys: set[str] = set()
        for index in chain:
            for instruction in stages[index].instructions:
                if instruction.keyword == "ENV":
                    keys.update(_env_keys(instruction.args))
        missing = [name for name in RUNTIME_ENV_VARS if name not in keys]
        if missing:
            fix = " ".join(f"{name}={RUNTIME_ENV_DEFAULTS[name]}" for name in missing)
            hits.append(
                (
                    RUNTIME_ENV,
                    stages[last].line,
                    _(
                        "A runtime base image must set %(names)s: add `ENV %(fix)s` to the "
                        "final stage.",
                        names=", ".join(missing),
                        fix=fix,
                    ),
                )
            )
    return hits, infos


def _base_hits(
    stage: ParsedStage,
    catalog: Catalog,
    service: ServiceContext | None,
    needed: str,
    today: datetime.date,
    hits: list[Hit],
) -> tuple[CatalogImage | None, str | None]:
    line = stage.line
    shown = f"FROM {stage.base}"
    if stage.base == "scratch":
        image = catalog.by_name.get("scratch", SCRATCH_IMAGE)
        hits.extend(_image_hits(catalog, image, shown, line, service, today))
        return image, None
    try:
        ref = parse_reference(stage.base)
    except ReferenceError as exc:
        hits.append(
            (
                MALFORMED_FROM,
                line,
                _("FROM %(base)s: %(error)s", base=repr(stage.base[:200]), error=_error(exc)),
            )
        )
        return None, None
    if ref.registry and ref.registry not in catalog.registries:
        hits.append(
            (
                REGISTRY_NOT_APPROVED,
                line,
                _(
                    "%(shown)s: %(registry)s is not an approved registry (approved: "
                    "%(approved)s); pull the catalog image from an approved registry.",
                    shown=shown,
                    registry=ref.registry,
                    approved=", ".join(catalog.registries),
                )
                if catalog.registries
                else _(
                    "%(shown)s: %(registry)s is not an approved registry (approved: none "
                    "configured); pull the catalog image from an approved registry.",
                    shown=shown,
                    registry=ref.registry,
                ),
            )
        )
    resolved = resolve(catalog, ref, needed)
    if resolved is None:
        hits.append(
            (
                NOT_APPROVED,
                line,
                _(
                    "%(shown)s: %(image)s is not an approved catalog image; %(use)s.",
                    shown=shown,
                    image=ref.repository,
                    use=_suggestion_text(catalog, needed, guess_family(ref), ref.short_name),
                ),
            )
        )
        return None, None
    hits.extend(_image_hits(catalog, resolved, shown, line, service, today))
    version_hits, pinned = _version_hits(catalog, resolved, ref, line, shown)
    hits.extend(version_hits)
    return resolved, pinned


def _kind_hits(
    stage: ParsedStage,
    image: CatalogImage,
    catalog: Catalog,
    needed: str,
    purpose: str,
    last: int,
    hits: list[Hit],
) -> None:
    if image.kind == needed:
        return
    shown = f"FROM {stage.base}"
    if stage.index == last:
        if purpose == "build-recipe":
            return
        target = _suggested(catalog, "runtime", image.os_family)
        hits.append(
            (
                FINAL_NOT_RUNTIME,
                stage.line,
                _(
                    "%(shown)s: the final stage is built on %(image)s, a build image; ship on a "
                    "runtime base: compile in a builder stage and COPY the result into a final "
                    "stage FROM %(target)s.",
                    shown=shown,
                    image=image.name,
                    target=target,
                )
                if target is not None
                else _(
                    "%(shown)s: the final stage is built on %(image)s, a build image; ship on a "
                    "runtime base: compile in a builder stage and COPY the result into a final "
                    "stage FROM an approved runtime image (%(none)s).",
                    shown=shown,
                    image=image.name,
                    none=_none_approved("runtime"),
                ),
            )
        )
    elif needed == "build":
        hits.append(
            (
                BUILDER_NOT_BUILD,
                stage.line,
                _(
                    "%(shown)s: builder stage %(stage)s uses %(image)s, a runtime image; "
                    "compile in a build base image: %(use)s.",
                    shown=shown,
                    stage=stage.name or str(stage.index),
                    image=image.name,
                    use=_suggestion_text(catalog, "build", image.os_family),
                ),
            )
        )


def _escape_hits(
    instruction: Instruction,
    parsed: ParsedDockerfile,
    catalog: Catalog,
    service: ServiceContext | None,
    today: datetime.date,
) -> Iterator[Hit]:
    """A recipe's ways out of its build (see `images.policy.escapes`), and its COPY --from images.

    `COPY --from=<image>` must name an approved catalog image, which is then checked and pinned
    like a FROM line; an earlier stage is fine, and a name of no stage is BIP025's.
    """
    for escape in instruction_escapes(instruction.keyword, instruction.args, instruction.line):
        yield escape.rule, escape.line, escape.message
    source = copy_from_value(instruction.keyword, instruction.args)
    if source is None or instruction.line in parsed.stage_ref_lines:
        return
    if not source or "$" in source:
        yield (
            EXTERNAL_COPY_FROM,
            instruction.line,
            _(
                "%(keyword)s --from=%(source)s names its image through a build argument (or "
                "not at all): name an earlier stage or an approved catalog image.",
                keyword=instruction.keyword,
                source=source[:120],
            ),
        )
        return
    if not any(ch in source for ch in ":/@"):
        return  # a bare name that is no stage: BIP025 (from the parser)
    shown = f"{instruction.keyword} --from={source[:200]}"
    try:
        ref = parse_reference(source)
    except ReferenceError as exc:
        yield (
            EXTERNAL_COPY_FROM,
            instruction.line,
            _("%(shown)s: %(error)s", shown=shown, error=_error(exc)),
        )
        return
    resolved = resolve(catalog, ref, "build")
    if (ref.registry and ref.registry not in catalog.registries) or resolved is None:
        yield (
            EXTERNAL_COPY_FROM,
            instruction.line,
            _(
                "%(shown)s pulls an image that is not an approved catalog image: copy from an "
                "earlier stage, or from a catalog image (%(use)s).",
                shown=shown,
                use=_suggestion_text(catalog, "build", guess_family(ref), ref.short_name),
            ),
        )
        return
    yield from _image_hits(catalog, resolved, shown, instruction.line, service, today)
    version_hits, _pinned = _version_hits(catalog, resolved, ref, instruction.line, shown)
    yield from version_hits
