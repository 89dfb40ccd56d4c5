"""The build sandbox: what a Dockerfile may do, and the namespaces its RUN steps run in.

Defence in depth next to the policy engine (rules BIP040-BIP044): `recipe_escapes` refuses
`RUN --mount`/`--network`/`--security`, remote `ADD`/`COPY` sources, `ONBUILD` and
`COPY --from=` of anything but an earlier stage or an image the caller pinned — whatever
severity a policy file gives those rules. Besides the BuildKit-style logical instructions it
reads every physical line that starts with an instruction keyword as an instruction of its
own, so text that another Dockerfile parser (buildah 1.28 has no heredocs) would run is
checked too.

`sandbox_prefix` gives `buildah bud` a network, PID and mount namespace of its own
(`unshare`, through `sandbox_run.py`), with `slirp4netns --disable-host-loopback` for
egress: RUN steps can download packages but see neither the host's processes nor its
loopback services (the portal, PostgreSQL, Redis, the registry). Pulls and pushes run
outside it, with the credentials.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from images.policy.escapes import Escape, copy_from_value, instruction_escapes
from images.policy.parser import parse_dockerfile
from images.texts import _

from .config import BuilderConfig
from .errors import BuildError

_KEYWORD_LINE_RE = re.compile(r"^\s*(RUN|ADD|COPY|ONBUILD)\s+(.*)\Z", re.IGNORECASE)
_RUNNER = Path(__file__).with_name("sandbox_run.py")


def recipe_escapes(text: str, *, allowed_images: Collection[str] = ()) -> list[Escape]:
    """Every way the Dockerfile `text` reaches outside its build (empty: none).

    Args:
        allowed_images: image references `COPY --from=` may name besides earlier stages
            (the catalog images the build job resolved and pinned).
    """
    parsed = parse_dockerfile(text)
    found: dict[tuple[str, int], Escape] = {}

    def check(keyword: str, args: str, line: int) -> None:
        for escape in instruction_escapes(keyword, args, line):
            found.setdefault((escape.rule, escape.line), escape)
        source = copy_from_value(keyword.upper(), args)
        if source is None or line in parsed.stage_ref_lines or source in allowed_images:
            return
        escape = Escape(
            "BIP043",
            line,
            f"{keyword.upper()} --from={source[:120]} is neither an earlier stage nor a catalog "
            "image the portal pinned: copy from an earlier stage or an approved catalog image.",
        )
        found.setdefault((escape.rule, escape.line), escape)

    for instruction in parsed.instructions:
        check(instruction.keyword, instruction.args, instruction.line)
    for number, line in enumerate(text.split("\n"), start=1):
        match = _KEYWORD_LINE_RE.match(line)
        if match:
            check(match.group(1), match.group(2), number)
    return sorted(found.values(), key=lambda e: (e.line, e.rule))


def check_recipe(text: str, *, allowed_images: Collection[str] = ()) -> None:
    """Raise BuildError when the Dockerfile reaches outside its build (see `recipe_escapes`)."""
    escapes = recipe_escapes(text, allowed_images=allowed_images)
    if escapes:
        listed = "; ".join(f"line {e.line}: {e.message}" for e in escapes[:10])
        more = f" (and {len(escapes) - 10} more)" if len(escapes) > 10 else ""
        raise BuildError(
            _(
                "The builder refuses this Dockerfile, it reaches outside its build: %(escapes)s",
                escapes=listed + more,
            ),
            step="sandbox check",
        )


def external_images(text: str, *, allowed_images: Collection[str] = ()) -> list[str]:
    """The images a build needs in local storage: FROM bases (not stages, not scratch) and the
    allowed `COPY --from=` images, in order, once each."""
    parsed = parse_dockerfile(text)
    images: list[str] = []
    for stage in parsed.stages:
        if stage.parent_stage is None and stage.base and stage.base.lower() != "scratch":
            images.append(stage.base)
        for instruction in stage.instructions:
            source = copy_from_value(instruction.keyword, instruction.args)
            if source is not None and source in allowed_images:
                if instruction.line not in parsed.stage_ref_lines:
                    images.append(source)
    return list(dict.fromkeys(images))


def sandbox_prefix(config: BuilderConfig) -> list[str]:
    """The argv prefix that runs a command in the build's own network, PID and mount namespace
    (`sandbox_run.py`: unshare + slirp4netns, one process group); [] when `config.sandbox` is
    off."""
    if not config.sandbox:
        return []
    # The script itself is the program, so job logs and the reaper name it (not "python3").
    return [str(_RUNNER), config.unshare, config.slirp4netns, "--"]
