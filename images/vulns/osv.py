"""OSV evaluation of one `affected[]` entry against one installed version (pure).

As the OSV schema's "Evaluation" section says: a version is affected when it is listed in
`versions[]` or falls in any range. Per range, the events are sorted by version
(`introduced: "0"` lowest) and walked: `introduced` at or below the version → affected,
`fixed` at or below → not affected from there, `last_affected` strictly below → not
affected (the version itself is included), `limit` at or below → outside the range.
GIT ranges are stored but never matched (commit hashes have no order here); SEMVER ranges
compare with SemVer 2.0.0 (a leading `v` dropped); ECOSYSTEM ranges with the ecosystem's
comparator (images.vulns.versions).

Derived per match:
* `fixed_version`: the lowest `fixed` above the installed version in a matching range.
* `fix_state` (FixState values): `fixed` when such a fix exists; `not_fixed` when a
  matching range is open-ended (no `fixed`/`last_affected` above the version: no fix is
  released); `unknown` when only `versions[]` or a `last_affected` bound matched (the data
  does not name a fix). Hints in `ecosystem_specific` win over those when present: Debian's
  `urgency: unimportant` (the security tracker's "does not affect the binary packages",
  e.g. the vulnerable code is not built) → `not_affected`; `urgency: end-of-life` (Debian
  no longer supports the package in that release) → `wont_fix`; an explicit
  `fix_state`/`status` of `wont_fix`/`will_not_fix` or `not_affected` → that state.
  The finding stays a finding either way; the gate decides what blocks.
* `needs_review`: a version that does not parse (installed or in the record), or a range
  type without a comparator, gives a reason instead of a silent skip — unless another
  range or `versions[]` already says affected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .versions import Family, VersionError, compare, ecosystem_family, parse_version

FIXED = "fixed"
NOT_FIXED = "not_fixed"
WONT_FIX = "wont_fix"
NOT_AFFECTED = "not_affected"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one affected entry says about one installed version."""

    affected: bool
    fixed_version: str = ""
    fix_state: str = UNKNOWN
    needs_review: str = ""

    @property
    def is_finding(self) -> bool:
        """Affected, or not decidable (a `needs_review` finding)."""
        return self.affected or bool(self.needs_review)


NOT_AFFECTED_RESULT = Evaluation(affected=False)

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


def _hint_state(ecosystem_specific: Mapping[str, Any] | None) -> str:
    if not isinstance(ecosystem_specific, Mapping):
        return ""
    urgency = str(ecosystem_specific.get("urgency", "")).strip().lower()
    if urgency == "unimportant":
        return NOT_AFFECTED
    if urgency == "end-of-life":
        return WONT_FIX
    for key in ("fix_state", "status"):
        value = str(ecosystem_specific.get(key, "")).strip().lower().replace("'", "")
        if value in ("wont_fix", "will_not_fix", "wont fix", "will not fix"):
            return WONT_FIX
        if value in ("not_affected", "not affected"):
            return NOT_AFFECTED
    return ""


def _range_events(rng: Mapping[str, Any]) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    for event in rng.get("events") or []:
        if not isinstance(event, Mapping):
            continue
        for kind in _EVENT_KINDS:
            value = event.get(kind)
            if isinstance(value, str) and value:
                events.append((kind, value))
                break
    return events


@dataclass(frozen=True, slots=True)
class _RangeResult:
    affected: bool
    fixed_version: str
    open_ended: bool
    family: Family | None = None


def _version_of(item: tuple[int, int, str, str, Any]) -> Any:
    return item[4]


def _evaluate_range(family: Family, version: str, events: list[tuple[str, str]]) -> _RangeResult:
    """Walk one range's sorted events; `VersionError` when a version does not parse."""
    installed = parse_version(family, version)
    keyed: list[tuple[int, int, str, str, Any]] = []
    for index, (kind, value) in enumerate(events):
        if kind == "introduced" and value == "0":
            keyed.append((0, index, kind, value, None))
        else:
            keyed.append((1, index, kind, value, parse_version(family, value)))
    lowest = [item for item in keyed if item[4] is None]
    # Sort by version; sorted() is stable, so equal versions keep the record's order.
    ordered = lowest + sorted((item for item in keyed if item[4] is not None), key=_version_of)

    affected = False
    bound_seen = False  # a last_affected equal to the installed version bounds the range
    above: list[tuple[int, int, str, str, Any]] = []
    for position, (_, _, kind, _value, parsed) in enumerate(ordered):
        if parsed is not None and installed < parsed:
            above = ordered[position:]  # this event and every later one lie above
            break
        if kind == "introduced":
            affected, bound_seen = True, False
        elif kind == "fixed":
            affected = False
        elif kind == "last_affected":
            if not parsed < installed:  # equal: the last affected version itself
                bound_seen = True
            else:
                affected = False
        elif kind == "limit":
            return _RangeResult(False, "", False)
    if not affected:
        return _RangeResult(False, "", False)
    if bound_seen:
        return _RangeResult(True, "", False)
    for _, _, kind, value, _parsed in above:
        if kind == "fixed":
            return _RangeResult(True, value, False)
        if kind in ("last_affected", "limit"):
            return _RangeResult(True, "", False)
    return _RangeResult(True, "", True)


def _listed(family: Family | None, version: str, versions: Sequence[Any]) -> bool:
    if version in versions:
        return True
    if family is None:
        return False
    for listed in versions:
        if not isinstance(listed, str):
            continue
        try:
            if compare(family, version, listed) == 0:
                return True
        except VersionError:
            continue
    return False


def evaluate(
    *,
    ecosystem: str,
    version: str,
    ranges: Sequence[Any] | None,
    versions: Sequence[Any] | None = None,
    ecosystem_specific: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate one OSV `affected[]` entry (its ecosystem, ranges, versions and
    ecosystem_specific) against an installed `version` of a package of that ecosystem."""
    reasons: list[str] = []
    try:
        eco_family: Family | None = ecosystem_family(ecosystem)
    except VersionError:
        eco_family = None

    hits: list[_RangeResult] = []
    for rng in ranges or []:
        if not isinstance(rng, Mapping):
            continue
        kind = str(rng.get("type", "")).upper()
        if kind == "GIT":
            continue
        if kind == "SEMVER":
            family: Family | None = Family.GO  # SemVer, tolerating a leading "v"
        elif kind == "ECOSYSTEM":
            family = eco_family
        else:
            reasons.append(f"range type {kind or '(none)'} has no comparator")
            continue
        if family is None:
            reasons.append(f"no version comparator for ecosystem {ecosystem}")
            continue
        try:
            result = _evaluate_range(family, version, _range_events(rng))
        except VersionError as exc:
            reasons.append(str(exc))
            continue
        if result.affected:
            hits.append(_RangeResult(True, result.fixed_version, result.open_ended, family))

    listed = _listed(eco_family, version, versions or [])
    if not hits and not listed:
        if reasons:
            return Evaluation(affected=False, needs_review="; ".join(reasons)[:300])
        return NOT_AFFECTED_RESULT

    fixed_version = ""
    best: Any = None
    for hit in hits:
        if not hit.fixed_version or hit.family is None:
            continue
        parsed = parse_version(hit.family, hit.fixed_version)  # parsed above: cannot fail
        if best is None or (best[0] is hit.family and parsed < best[1]):
            best = (hit.family, parsed)
            fixed_version = hit.fixed_version
    if fixed_version:
        state = FIXED
    elif any(hit.open_ended for hit in hits):
        state = NOT_FIXED
    else:
        state = UNKNOWN
    hint = _hint_state(ecosystem_specific)
    return Evaluation(affected=True, fixed_version=fixed_version, fix_state=hint or state)
