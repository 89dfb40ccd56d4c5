"""Policy data: rule severities, titles, help texts and ignores, loaded from YAML.

`defaults.yaml` beside this module lists every portal rule. An admin file may override
severities (portal and hadolint ids), extend the ignore list and tune the hadolint mapping.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

SEVERITIES = ("fail", "warn", "info")
HADOLINT_LEVELS = ("error", "warning", "info", "style")
DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")
_PORTAL_ID_RE = re.compile(r"^BIP\d{3}\Z")
_LINTER_ID_RE = re.compile(r"^(?:DL|SC)\d{4}\Z")
_OVERRIDE_KEYS = frozenset({"severities", "ignore", "hadolint"})

try:  # the C loader is ~10x faster; PyYAML wheels ship it
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


class PolicyError(ValueError):
    """The policy YAML is unreadable or invalid; the message says which file and key."""


@dataclass(frozen=True)
class RuleInfo:
    """A portal rule: its id, default severity, one-line title and help text."""

    id: str
    severity: str
    title: str
    help: str


@dataclass(frozen=True)
class PolicyConfig:
    """Effective policy: rules with severities after overrides, ignores, hadolint settings."""

    rules: Mapping[str, RuleInfo]
    severities: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ignore: frozenset[str] = frozenset()
    hadolint_levels: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(
            {"error": "fail", "warning": "warn", "info": "info", "style": "info"}
        )
    )
    hadolint_timeout: float = 10.0

    def severity(self, rule: str, default: str = "warn") -> str:
        """The severity of `rule`: an override, else the rule's own, else `default`."""
        if rule in self.severities:
            return self.severities[rule]
        info = self.rules.get(rule)
        return info.severity if info else default


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"Cannot read the policy file {str(path)!r}: {exc.strerror}.") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"The policy file {str(path)!r} is not UTF-8 text.") from exc
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PolicyError(f"The policy file {str(path)!r} is not valid YAML{where}.") from exc


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITIES:
        raise PolicyError(
            f"{where}: unknown severity {value!r}; use one of {', '.join(SEVERITIES)}."
        )
    return str(value)


def _rule_id(value: Any, known: Mapping[str, RuleInfo], where: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: rule ids are strings like BIP004 or DL3008, got {value!r}.")
    if _PORTAL_ID_RE.match(value):
        if value not in known:
            raise PolicyError(f"{where}: unknown portal rule {value!r}.")
        return value
    if _LINTER_ID_RE.match(value):
        return value
    raise PolicyError(
        f"{where}: {value!r} is not a rule id (portal BIPnnn or hadolint DLnnnn/SCnnnn)."
    )


def _apply(
    data: Any,
    where: str,
    rules: Mapping[str, RuleInfo],
    severities: dict[str, str],
    ignore: set[str],
    levels: dict[str, str],
    timeout: list[float],
) -> None:
    if data is None:
        return
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: the policy must be a mapping of {sorted(_OVERRIDE_KEYS)}.")
    unknown = set(data) - _OVERRIDE_KEYS - ({"rules"} if where.endswith("defaults.yaml") else set())
    if unknown:
        raise PolicyError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"allowed: {', '.join(sorted(_OVERRIDE_KEYS))}."
        )
    raw_severities = data.get("severities") or {}
    if not isinstance(raw_severities, Mapping):
        raise PolicyError(f"{where}: 'severities' must map rule ids to fail/warn/info.")
    for rule, value in raw_severities.items():
        rule_id = _rule_id(rule, rules, f"{where}: severities")
        severities[rule_id] = _severity(value, f"{where}: severities.{rule_id}")
    raw_ignore = data.get("ignore") or []
    if not isinstance(raw_ignore, list):
        raise PolicyError(f"{where}: 'ignore' must be a list of rule ids.")
    ignore.update(_rule_id(rule, rules, f"{where}: ignore") for rule in raw_ignore)
    hadolint = data.get("hadolint") or {}
    if not isinstance(hadolint, Mapping):
        raise PolicyError(f"{where}: 'hadolint' must be a mapping (levels, timeout_seconds).")
    for level, value in (hadolint.get("levels") or {}).items():
        if level not in HADOLINT_LEVELS:
            raise PolicyError(
                f"{where}: hadolint.levels: unknown hadolint level {level!r}; use "
                f"{', '.join(HADOLINT_LEVELS)}."
            )
        levels[level] = _severity(value, f"{where}: hadolint.levels.{level}")
    if "timeout_seconds" in hadolint:
        value = hadolint["timeout_seconds"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 300:
            raise PolicyError(
                f"{where}: hadolint.timeout_seconds must be a number of seconds in (0, 300]."
            )
        timeout[0] = float(value)


def _default_rules(data: Any) -> dict[str, RuleInfo]:
    where = str(DEFAULTS_PATH)
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), Mapping):
        raise PolicyError(f"{where}: a 'rules' mapping is required.")
    rules = {}
    for rule, spec in data["rules"].items():
        if not isinstance(rule, str) or not _PORTAL_ID_RE.match(rule):
            raise PolicyError(f"{where}: rules: {rule!r} is not a BIPnnn id.")
        if not isinstance(spec, Mapping) or not {"severity", "title", "help"} <= set(spec):
            raise PolicyError(f"{where}: rules.{rule} needs severity, title and help.")
        rules[rule] = RuleInfo(
            id=rule,
            severity=_severity(spec["severity"], f"{where}: rules.{rule}"),
            title=str(spec["title"]),
            help=str(spec["help"]),
        )
    return rules


def _build(paths: tuple[Path, ...]) -> PolicyConfig:
    defaults = _read_yaml(DEFAULTS_PATH)
    rules = _default_rules(defaults)
    severities: dict[str, str] = {}
    ignore: set[str] = set()
    levels: dict[str, str] = {}
    timeout = [10.0]
    for path in (DEFAULTS_PATH, *paths):
        data = defaults if path == DEFAULTS_PATH else _read_yaml(path)
        _apply(data, str(path), rules, severities, ignore, levels, timeout)
    base_levels = {"error": "fail", "warning": "warn", "info": "info", "style": "info"}
    base_levels.update(levels)
    return PolicyConfig(
        rules=MappingProxyType(rules),
        severities=MappingProxyType(severities),
        ignore=frozenset(ignore),
        hadolint_levels=MappingProxyType(base_levels),
        hadolint_timeout=timeout[0],
    )


@lru_cache(maxsize=16)
def _cached(path: str | None, stamp: tuple[int, int] | None) -> PolicyConfig:
    return _build((Path(path),) if path else ())


def load_policy(path: str | os.PathLike[str] | None = None) -> PolicyConfig:
    """Load the default policy, overridden by the admin YAML file at `path` if given.

    Cached by the file's modification time and size, so calling it per request is cheap and
    an edited file is picked up.

    Raises:
        PolicyError: the file is missing, not YAML, or has an unknown key, rule or severity.
    """
    if path is None or str(path) == "":
        return _cached(None, None)
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise PolicyError(f"Cannot read the policy file {str(path)!r}: {exc.strerror}.") from exc
    return _cached(str(path), (stat.st_mtime_ns, stat.st_size))
