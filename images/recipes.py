"""Recipes of image requests: bootstrap specs and the `FROM` lines of Dockerfile recipes.

Pure module, no Django: parsing and rewriting only. The build job resolves the references this
module finds against the catalog and pins them by digest with `pin_dockerfile`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .builder import BootstrapSpec

MAX_RECIPE_BYTES = 256 * 1024
BOOTSTRAP_KEYS = frozenset({"suite", "variant", "packages", "mirror", "locale", "env", "cmd"})
_FROM_RE = re.compile(r"^(\s*FROM\s+)(.*?)\s*$", re.IGNORECASE)
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


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


def parse_bootstrap_recipe(text: str, *, default_env: Mapping[str, str]) -> BootstrapRecipe:
    """Parse a YAML/JSON bootstrap recipe into a BootstrapRecipe.

    Keys: `suite` (required), `variant` (default minbase), `packages` (list), `mirror`
    (URL or null), `locale` (a locale.gen line or ""), `env` (merged over `default_env`),
    `cmd` (exec-form list, default ["/bin/bash"]).

    Raises:
        RecipeError: not a mapping, unknown keys, or a value the builder refuses.
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
