"""`analyse`: the standard over every stage (FROM, stage kinds, RUN, ENV, recipe escapes)."""

from __future__ import annotations

import datetime
import re
import shlex
from collections.abc import Iterator

from images.policy.catalog import Catalog, CatalogImage, ServiceContext
from images.policy.escapes import EXTERNAL_COPY_FROM, copy_from_value, instruction_escapes
from images.policy.parser import MALFORMED_FROM, Instruction, ParsedDockerfile, ParsedStage
from images.policy.rules.common import (
    BUILDER_NOT_BUILD,
    FINAL_NOT_RUNTIME,
    NOT_APPROVED,
    PIPE_TO_SHELL,
    RECIPE_PURPOSES,
    REGISTRY_NOT_APPROVED,
    RUNTIME_ENV,
    RUNTIME_ENV_DEFAULTS,
    RUNTIME_ENV_VARS,
    SCRATCH_IMAGE,
    Hit,
    StageInfo,
    _error,
    _none_approved,
    _suggested,
    _suggestion_text,
    guess_family,
    resolve,
)
from images.policy.rules.image_state import _image_hits, _version_hits
from images.references import ReferenceError, parse_reference
from images.texts import _

_PIPE_TO_SHELL_RE = re.compile(
    r"\b(?:curl|wget)\b[^|;&\n]*\|\s*(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+)?"
    r"(?:/usr)?(?:/bin/)?(?:ba|da|z|k|a)?sh\b"
    r"|\b(?:ba|da|z|k|a)?sh\s+(?:-c\s+)?[\"']?(?:\$\(|<\(|`)\s*(?:curl|wget)\b"
)
_ENV_KEY_RE = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=")


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
