"""Recipes of image requests: bootstrap specs and the `FROM` lines of Dockerfile recipes.

Pure module, no Django: parsing and rewriting only (the one exception: `allowed_mirrors`
reads the portal's allow-list of bootstrap mirrors from the settings). The build job resolves
the references this module finds (FROM lines and `COPY --from=` images) against the catalog
and pins them by digest with `pin_dockerfile` and `pin_copy_from`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from .builder import BootstrapSpec, mirror_allowed

MAX_RECIPE_BYTES = 256 * 1024
BOOTSTRAP_KEYS = frozenset({"suite", "variant", "packages", "mirror", "locale", "env", "cmd"})
_FROM_RE = re.compile(r"^(\s*FROM\s+)(.*?)\s*$", re.IGNORECASE)
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_COPY_FROM_RE = re.compile(r"^(\s*(?:COPY|ADD)\s+(?:--\S+\s+)*?--from=)(\S+)(.*)\Z", re.IGNORECASE)


class RecipeError(ValueError):
    """The recipe cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class BootstrapRecipe:
    """A bootstrap recipe: the mmdebstrap spec plus the image's env and command."""

    spec: BootstrapSpec
    env: Mapping[str, str] = field(default_factory=dict)
    cmd: tuple[str, ...] = ("/bin/bash",)

    def canonical(self) -> str:
        """A stable JSON text of the recipe (what its sha256 is taken over)."""
        return json.dumps(
            {
                "suite": self.spec.suite,
                "variant": self.spec.variant,
                "packages": list(self.spec.packages),
                "mirror": self.spec.mirror,
                "locale": self.spec.locale,
                "env": dict(sorted(self.env.items())),
                "cmd": list(self.cmd),
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class FromLine:
    """One `FROM` instruction: its 1-based line, the image it names and its stage alias."""

    line: int
    image: str
    alias: str = ""
    external: bool = True


@dataclass(frozen=True)
class CopyFromLine:
    """A `COPY --from=<image>` (or ADD) that names an image, not an earlier stage."""

    line: int
    image: str


def allowed_mirrors() -> tuple[str, ...]:
    """The bootstrap mirrors the portal allows: PORTAL_BOOTSTRAP_MIRRORS, plus the platform's
    own default PORTAL_BOOTSTRAP_MIRROR when set. Empty: no mirror (the machine's sources)."""
    from django.conf import settings  # the one setting this module reads

    allowed = tuple(settings.PORTAL_BOOTSTRAP_MIRRORS)
    default = settings.PORTAL_BOOTSTRAP_MIRROR
    return (*allowed, default) if default else allowed


def recipe_sha256(text: str) -> str:
    """sha256 (hex) of a recipe's text."""
    return hashlib.sha256(text.encode()).hexdigest()


def check_recipe_text(text: str) -> str:
    """The recipe text, or RecipeError when it is empty, too large or contains NUL bytes."""
    if not isinstance(text, str) or not text.strip():
        raise RecipeError("The recipe is empty: give a Dockerfile or a bootstrap spec.")
    if len(text.encode()) > MAX_RECIPE_BYTES:
        raise RecipeError(f"The recipe is larger than {MAX_RECIPE_BYTES} bytes (256 KiB).")
    if "\0" in text:
        raise RecipeError("The recipe contains a NUL byte.")
    return text


def parse_bootstrap_recipe(
    text: str, *, default_env: Mapping[str, str], mirrors: Sequence[str] | None = None
) -> BootstrapRecipe:
    """Parse a YAML/JSON bootstrap recipe into a BootstrapRecipe.

    Keys: `suite` (required), `variant` (default minbase), `packages` (list), `mirror`
    (URL or null), `locale` (a locale.gen line or ""), `env` (merged over `default_env`),
    `cmd` (exec-form list, default ["/bin/bash"]).

    Args:
        mirrors: the URL prefixes a `mirror` may start with; None: `allowed_mirrors()`.

    Raises:
        RecipeError: not a mapping, unknown keys, a mirror not on the allow-list, or a value
            the builder refuses.
    """
    check_recipe_text(text)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"The bootstrap recipe is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RecipeError(
            "A bootstrap recipe is a mapping, e.g. "
            '{"suite": "bookworm", "variant": "minbase", "packages": ["ca-certificates"]}.'
        )
    unknown = sorted(str(k) for k in set(data) - BOOTSTRAP_KEYS)
    if unknown:
        raise RecipeError(
            f"Unknown bootstrap key(s) {', '.join(unknown)}; "
            f"use {', '.join(sorted(BOOTSTRAP_KEYS))}."
        )
    if "suite" not in data:
        raise RecipeError("The bootstrap recipe needs a 'suite' (e.g. bookworm).")
    packages = data.get("packages") or []
    if not isinstance(packages, list):
        raise RecipeError("'packages' must be a list of Debian package names.")
    env = data.get("env") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and _ENV_KEY_RE.match(k) and isinstance(v, str | int | float)
        for k, v in env.items()
    ):
        raise RecipeError("'env' must map variable names to string values.")
    cmd = data.get("cmd", ["/bin/bash"])
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise RecipeError("'cmd' must be a non-empty list of strings (exec form).")
    mirror = data.get("mirror")
    if mirror is not None:
        allowed = allowed_mirrors() if mirrors is None else tuple(mirrors)
        if not isinstance(mirror, str) or not mirror_allowed(mirror, allowed):
            listed = ", ".join(allowed) or "none: the build machine's own apt sources only"
            raise RecipeError(
                f"The mirror {str(mirror)[:200]!r} is not an allowed bootstrap mirror (allowed: "
                f"{listed}); remove 'mirror' or ask the platform team to allow it."
            )
    kwargs: dict[str, Any] = {
        "suite": data["suite"],
        "variant": data.get("variant", "minbase"),
        "packages": tuple(packages),
        "mirror": data.get("mirror"),
    }
    if "locale" in data:
        kwargs["locale"] = data["locale"] or ""
    try:
        spec = BootstrapSpec(**kwargs)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"Invalid bootstrap recipe: {exc}") from exc
    merged = {**default_env, **{k: str(v) for k, v in env.items()}}
    return BootstrapRecipe(spec=spec, env=merged, cmd=tuple(cmd))


def dockerfile_from_lines(text: str) -> list[FromLine]:
    """Every `FROM` instruction of a Dockerfile, marking references to earlier stages.

    Raises:
        RecipeError: there is no FROM, or a FROM names its image through a build ARG.
    """
    check_recipe_text(text)
    found: list[FromLine] = []
    aliases: set[str] = set()
    continued = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        is_continuation = continued
        continued = stripped.endswith("\\") and not stripped.startswith("#")
        if is_continuation or not stripped or stripped.startswith("#"):
            continue
        match = _FROM_RE.match(line)
        if not match:
            continue
        words = [w for w in match.group(2).split() if not w.startswith("--")]
        if not words:
            raise RecipeError(f"Line {number}: FROM names no image.")
        image = words[0]
        alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else ""
        if "$" in image:
            raise RecipeError(
                f"Line {number}: FROM {image} uses a build argument; name the catalog image "
                "so it can be checked and pinned by digest."
            )
        external = image.lower() not in aliases and image.lower() != "scratch"
        found.append(FromLine(line=number, image=image, alias=alias, external=external))
        if alias:
            aliases.add(alias)
    if not found:
        raise RecipeError("The Dockerfile has no FROM instruction.")
    return found


def pin_dockerfile(text: str, pins: Mapping[int, str]) -> str:
    """Replace the image of the FROM on each line in `pins` with its pinned reference."""
    lines = text.splitlines(keepends=True)
    for number, pinned in pins.items():
        line = lines[number - 1]
        match = _FROM_RE.match(line.rstrip("\r\n"))
        if not match:
            raise RecipeError(f"Line {number} is not a FROM instruction.")
        words = match.group(2).split()
        index = next(i for i, w in enumerate(words) if not w.startswith("--"))
        words[index] = pinned
        ending = line[len(line.rstrip("\r\n")) :]
        lines[number - 1] = match.group(1) + " ".join(words) + ending
    return "".join(lines)


def dockerfile_copy_from_images(text: str) -> list[CopyFromLine]:
    """Every `COPY --from=`/`ADD --from=` on an instruction's first line that names an image
    rather than an earlier stage (by name or index)."""
    check_recipe_text(text)
    aliases = {line.alias for line in dockerfile_from_lines(text) if line.alias}
    found: list[CopyFromLine] = []
    continued = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        is_continuation = continued
        continued = stripped.endswith("\\") and not stripped.startswith("#")
        if is_continuation:
            continue
        match = _COPY_FROM_RE.match(line)
        if not match:
            continue
        source = match.group(2)
        if source.isdigit() or source.lower() in aliases:
            continue
        found.append(CopyFromLine(line=number, image=source))
    return found


def pin_copy_from(text: str, pins: Mapping[int, str]) -> str:
    """Replace the `--from=` image of the COPY/ADD on each line in `pins` with its pin."""
    lines = text.splitlines(keepends=True)
    for number, pinned in pins.items():
        line = lines[number - 1]
        body = line.rstrip("\r\n")
        match = _COPY_FROM_RE.match(body)
        if not match:
            raise RecipeError(f"Line {number} is not a COPY --from instruction.")
        lines[number - 1] = match.group(1) + pinned + match.group(3) + line[len(body) :]
    return "".join(lines)
