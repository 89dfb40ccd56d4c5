"""The OS lifecycle table (shipped as data in `images/data/os_lifecycle.yaml`). No Django."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA_FILE = Path(__file__).parent / "data" / "os_lifecycle.yaml"


@dataclass(frozen=True)
class Lifecycle:
    """One OS release: its end of life and what to move to after it."""

    family: str
    version: str
    eol: dt.date
    replacement_family: str = ""
    replacement_version: str = ""

    def is_eol(self, today: dt.date) -> bool:
        """Whether the release is past its end of life on `today`."""
        return self.eol < today


@functools.cache
def lifecycle_table() -> dict[tuple[str, str], Lifecycle]:
    """The whole table keyed by (family, version)."""
    rows = yaml.safe_load(DATA_FILE.read_text())
    table = {}
    for row in rows:
        repl = row.get("replacement") or {}
        entry = Lifecycle(
            family=row["family"],
            version=str(row["version"]),
            eol=row["eol"],
            replacement_family=repl.get("family", ""),
            replacement_version=str(repl.get("version", "")),
        )
        table[(entry.family, entry.version.lower())] = entry
    return table


def lifecycle_for(family: str, version: str) -> Lifecycle | None:
    """The lifecycle of `family` `version` ("12.8" matches "12", "22.03-lts-sp3" "22.03")."""
    table = lifecycle_table()
    version = version.strip().lower()
    if (family, version) in table:
        return table[(family, version)]
    for candidate in _prefixes(version):
        if (family, candidate) in table:
            return table[(family, candidate)]
    return None


def _prefixes(version: str) -> list[str]:
    parts = re.split(r"[.\-_ ]", version)
    return [".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]
