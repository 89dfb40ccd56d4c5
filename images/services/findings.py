"""Findings: match a scanned digest against the advisories, re-match only what an import
changed, reconcile (open, refresh, resolve — never delete)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def sbom_match(*, sbom_id: int) -> dict[str, Any]:
    """Match every package of one SBOM against the advisory index and reconcile its findings.

    Returns a summary (`{"open": n, "new": n, "resolved": n, "by_severity": {...}}`) and
    refreshes `scan_summary` of the image versions on this digest.
    """
    return {}


def findings_rematch(*, keys: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Re-evaluate only the stored packages whose (ecosystem, name or source name) is in `keys`
    and reconcile their findings across every image and binary version (no syft run)."""
    return {}
