"""The publish gate's policy data (pure): threshold and whether unfixed findings block.

`gate.yaml` beside this module holds the defaults; an admin YAML file may override them,
loaded like the Dockerfile policy (`config.load_policy`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import PolicyError

GATE_DEFAULTS_PATH = Path(__file__).with_name("gate.yaml")
GATE_THRESHOLDS = ("critical", "high", "medium", "low")
GATE_RANK = {"critical": 5, "high": 4, "medium": 3, "low": 2, "none": 1, "unknown": 0}
_KEYS = frozenset({"threshold", "block_unfixed"})
# Fix states that mean "a fix is available" / "no fix, but still affected".
FIXABLE_STATES = frozenset({"fixed"})
UNFIXED_STATES = frozenset({"not_fixed", "wont_fix", "unknown"})


@dataclass(frozen=True)
class GatePolicy:
    """The effective gate policy."""

    threshold: str = "critical"
    block_unfixed: bool = False

    def blocks(self, *, severity: str, fix_state: str) -> bool:
        """Whether an open, unwaived finding of this severity and fix state blocks publishing.

        Unknown severities never reach a threshold (rank 0); `not_affected` never blocks.
        """
        if GATE_RANK.get(severity, 0) < GATE_RANK[self.threshold]:
            return False
        if fix_state in FIXABLE_STATES:
            return True
        return self.block_unfixed and fix_state in UNFIXED_STATES


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"Cannot read the gate policy {str(path)!r}: {exc.strerror}.") from exc
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"The gate policy {str(path)!r} is not valid YAML.") from exc


def _apply(data: Any, where: str, values: dict[str, Any]) -> None:
    if data is None:
        return
    if isinstance(data, Mapping) and set(data) == {"gate"}:
        data = data["gate"]
    if not isinstance(data, Mapping):
        raise PolicyError(f"{where}: the gate policy must be a mapping of {sorted(_KEYS)}.")
    unknown = set(map(str, data)) - _KEYS
    if unknown:
        raise PolicyError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: "
            f"{', '.join(sorted(_KEYS))}."
        )
    if "threshold" in data:
        if data["threshold"] not in GATE_THRESHOLDS:
            raise PolicyError(
                f"{where}: threshold {data['threshold']!r}; use one of "
                f"{', '.join(GATE_THRESHOLDS)}."
            )
        values["threshold"] = str(data["threshold"])
    if "block_unfixed" in data:
        if not isinstance(data["block_unfixed"], bool):
            raise PolicyError(f"{where}: block_unfixed must be true or false.")
        values["block_unfixed"] = data["block_unfixed"]


def load_gate_policy(path: str | os.PathLike[str] | None = None) -> GatePolicy:
    """The default gate policy, overridden by the admin YAML file at `path` if given.

    Raises:
        PolicyError: a file is unreadable or invalid (the message names the file and key).
    """
    values: dict[str, Any] = {}
    _apply(_read(GATE_DEFAULTS_PATH), str(GATE_DEFAULTS_PATH), values)
    if path:
        _apply(_read(Path(path)), str(path), values)
    return GatePolicy(**values)
