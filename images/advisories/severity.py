"""An advisory's severity: CVSS base score and rating from its vectors, else the ecosystem's own.

Order of preference:
1. a CVSS v4 vector, then a CVSS v3 (3.0/3.1) vector, scored with the `cvss` library. v4 is
   preferred when a record carries both: it is the publisher's newer assessment (v4 adds the
   attack-requirements and subsequent-system metrics v3 folds away), and a publisher that took
   the trouble to add it meant it to be read. v3 remains the fallback most records still have.
   CVSS v2 is not used: its ratings (no Critical) cannot be compared with the others.
2. the ecosystem's own word: an OSV `Ubuntu` severity entry, or a `severity`/`priority`/
   `urgency` string in `ecosystem_specific`/`database_specific` (Ubuntu's priority, Debian's
   urgency — only a hint: `unimportant` and `low` → low, `medium` → medium, `high` → high).
3. unknown.

A vector the library refuses is skipped (the next source is tried); it never fails a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cvss import CVSS3, CVSS4, CVSSError

from .osv import SeverityEntry

CRITICAL, HIGH, MEDIUM, LOW, NONE, UNKNOWN = "critical", "high", "medium", "low", "none", "unknown"
RANK = {CRITICAL: 5, HIGH: 4, MEDIUM: 3, LOW: 2, NONE: 1, UNKNOWN: 0}

# The ecosystems' words (Ubuntu priority, Debian urgency, Red Hat/SUSE/GHSA severity).
WORDS = {
    "critical": CRITICAL,
    "important": HIGH,
    "high": HIGH,
    "medium": MEDIUM,
    "moderate": MEDIUM,
    "low": LOW,
    "negligible": LOW,
    "unimportant": LOW,
}
HINT_KEYS = ("severity", "priority", "urgency")


@dataclass(frozen=True)
class SeverityResult:
    """The rating, the CVSS base score and vector it came from (if any) and where it came from."""

    rating: str = UNKNOWN
    score: Decimal | None = None
    vector: str = ""
    source: str = ""


def cvss_score(entry: SeverityEntry) -> SeverityResult | None:
    """Score one CVSS_V3/CVSS_V4 entry (None for another type or a vector the library refuses)."""
    try:
        if entry.type == "CVSS_V4":
            v4 = CVSS4(entry.score)
            return SeverityResult(
                rating=str(v4.severity).lower(),
                score=Decimal(str(v4.base_score)),
                vector=entry.score,
                source="cvss_v4",
            )
        if entry.type == "CVSS_V3":
            v3 = CVSS3(entry.score)
            return SeverityResult(
                rating=str(v3.severities()[0]).lower(),
                score=Decimal(str(v3.base_score)),
                vector=entry.score,
                source="cvss_v3",
            )
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def word_rating(value: Any) -> str:
    """The rating of an ecosystem's word (`medium`, `Important`, `unimportant` …), or unknown."""
    if not isinstance(value, str):
        return UNKNOWN
    return WORDS.get(value.strip().lower(), UNKNOWN)


def from_vectors(entries: Iterable[SeverityEntry]) -> SeverityResult | None:
    """The preferred CVSS result of `entries` (v4 before v3), or None."""
    entries = list(entries)
    for kind in ("CVSS_V4", "CVSS_V3"):
        for entry in entries:
            if entry.type == kind:
                scored = cvss_score(entry)
                if scored is not None:
                    return scored
    return None


def from_hints(
    entries: Iterable[SeverityEntry], *specifics: Mapping[str, Any]
) -> SeverityResult | None:
    """The worst rating an ecosystem's own words give (OSV `Ubuntu` entries, *_specific keys)."""
    best = UNKNOWN
    source = ""
    for entry in entries:
        if entry.type == "Ubuntu" and RANK[word_rating(entry.score)] > RANK[best]:
            best, source = word_rating(entry.score), "ubuntu"
    for specific in specifics:
        for key in HINT_KEYS:
            rating = word_rating(specific.get(key))
            if RANK[rating] > RANK[best]:
                best, source = rating, key
    return SeverityResult(rating=best, source=source) if best != UNKNOWN else None


def affected_severity(
    severity: Iterable[SeverityEntry],
    ecosystem_specific: Mapping[str, Any],
    database_specific: Mapping[str, Any],
    *,
    record_scored: bool = False,
) -> SeverityResult:
    """The severity of one `affected[]` entry: its own vectors, then its words — but a word
    (Debian's urgency is only a hint) never overrides a CVSS vector of the record itself
    (`record_scored`): then the entry has no severity of its own and the record's applies."""
    severity = list(severity)
    found = from_vectors(severity)
    if found is not None:
        return found
    if record_scored:
        return SeverityResult()
    return from_hints(severity, ecosystem_specific, database_specific) or SeverityResult()


def record_severity(
    severity: Iterable[SeverityEntry],
    affected: Iterable[tuple[Iterable[SeverityEntry], Mapping[str, Any], Mapping[str, Any]]],
    database_specific: Mapping[str, Any] | None = None,
) -> SeverityResult:
    """The severity of a record: its vectors, then the worst affected vector, then the words."""
    severity = list(severity)
    affected = [(list(s), e, d) for s, e, d in affected]
    found = from_vectors(severity)
    if found is not None:
        return found
    scored = [r for r in (from_vectors(s) for s, _, _ in affected) if r is not None]
    if scored:
        return max(scored, key=lambda r: (RANK[r.rating], r.score or Decimal(0)))
    hints = [from_hints(severity, database_specific or {})]
    hints += [from_hints(s, e, d) for s, e, d in affected]
    found_hints = [h for h in hints if h is not None]
    if found_hints:
        return max(found_hints, key=lambda r: RANK[r.rating])
    return SeverityResult()
