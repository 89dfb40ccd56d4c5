"""Findings: match a scanned digest against the advisories, re-match only what an import
changed, reconcile (open, refresh, resolve — never delete).

The index is `AffectedPackage` keyed by (OSV ecosystem, package name); every package is
looked up by its binary name and its source name (Debian's advisories name source
packages: `glibc` for `libc6`, `perl` for `perl-base`), in batches of keys — never one
query per package. A package is evaluated once (its version against each affected row,
images.vulns.osv) and the result fans out to every SBOM that contains it, so a re-match
after an import touches only the packages whose names the import changed and never runs
the scanner. Findings belong to the SBOM (the digest), so image and binary versions with
those bytes share them.

Reconciling one scope (an SBOM's findings, or the findings of some packages in every
SBOM): a new match is created (`first_seen` now); a finding still matching is refreshed
(`last_seen`, fixed version, fix state, severity) and reopened if it had been resolved; a
finding no longer matching is resolved — `withdrawn` when its advisory is withdrawn,
`package_gone` when the package left the SBOM, `fixed_in_data` otherwise.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ..choices import SEVERITY_RANK, FindingResolution, FixState, Severity
from ..models import Finding, Sbom
from ..vulns.osv import Evaluation, evaluate

KEY_BATCH = 5000
ID_BATCH = 20000


@dataclass(frozen=True, slots=True)
class _Pkg:
    id: int
    ecosystem: str
    name: str
    version: str
    source_name: str
    source_version: str

    def lookups(self) -> list[tuple[str, str, str]]:
        """(ecosystem, name, version to compare) for the binary and, if other, the source."""
        out = [(self.ecosystem, self.name, self.version)]
        if self.source_name and self.source_name != self.name:
            out.append((self.ecosystem, self.source_name, self.source_version or self.version))
        return out


@dataclass(frozen=True, slots=True)
class _Affected:
    advisory_id: int
    ecosystem: str
    name: str
    ranges: Any
    versions: Any
    ecosystem_specific: Any
    severity: str


@dataclass(slots=True)
class _Match:
    installed_version: str
    fixed_version: str
    fix_state: str
    severity: str
    matched_name: str
    needs_review: str


_PKG_COLUMNS = "p.id, p.ecosystem, p.name, p.version, p.source_name, p.source_version"


_EMPTY_JSON: dict[str, Any] = {"[]": (), "{}": {}}


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value in _EMPTY_JSON:
        return _EMPTY_JSON[value]
    return json.loads(value)


def _fetch_packages(sql: str, params: Sequence[Any]) -> list[_Pkg]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_Pkg(*row) for row in cursor.fetchall()]


def _packages_of_sbom(sbom_id: int) -> list[_Pkg]:
    return _fetch_packages(
        f"SELECT {_PKG_COLUMNS} FROM images_sbompackage sp "  # noqa: S608 constant columns
        "JOIN images_package p ON p.id = sp.package_id WHERE sp.sbom_id = %s",
        [sbom_id],
    )


def _packages_for_keys(keys: list[tuple[str, str]]) -> list[_Pkg]:
    found: dict[int, _Pkg] = {}
    for start in range(0, len(keys), KEY_BATCH):
        batch = keys[start : start + KEY_BATCH]
        ecosystems, names = [k[0] for k in batch], [k[1] for k in batch]
        for column in ("name", "source_name"):
            for pkg in _fetch_packages(
                f"SELECT {_PKG_COLUMNS} FROM images_package p "  # noqa: S608 constant columns
                f"WHERE (p.ecosystem, p.{column}) IN "
                "(SELECT * FROM unnest(%s::varchar[], %s::varchar[]))",
                [ecosystems, names],
            ):
                found[pkg.id] = pkg
    return list(found.values())


def _affected_index(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[_Affected]]:
    """Matchable affected rows (not quarantined, advisory not withdrawn) for the keys."""
    wanted = sorted(set(keys))
    index: dict[tuple[str, str], list[_Affected]] = defaultdict(list)
    with connection.cursor() as cursor:
        for start in range(0, len(wanted), KEY_BATCH):
            batch = wanted[start : start + KEY_BATCH]
            cursor.execute(
                "SELECT ap.advisory_id, ap.ecosystem, ap.name, ap.ranges, ap.versions, "
                "ap.ecosystem_specific, COALESCE(NULLIF(ap.severity, ''), a.severity) "
                "FROM images_affectedpackage ap "
                "JOIN images_advisory a ON a.id = ap.advisory_id "
                "WHERE (ap.ecosystem, ap.name) IN "
                "(SELECT * FROM unnest(%s::varchar[], %s::varchar[])) "
                "AND ap.quarantined = '' AND a.withdrawn IS NULL",
                [[k[0] for k in batch], [k[1] for k in batch]],
            )
            for adv, eco, name, ranges, versions, specific, severity in cursor.fetchall():
                index[(eco, name)].append(
                    _Affected(
                        adv, eco, name, _json(ranges), _json(versions), _json(specific), severity
                    )
                )
    return index


def _better(new: _Match, old: _Match) -> bool:
    """Which of two matches of one (package, advisory) the finding keeps."""
    if bool(new.needs_review) != bool(old.needs_review):
        return not new.needs_review  # an affected verdict beats "cannot tell"
    if bool(new.fixed_version) != bool(old.fixed_version):
        return bool(new.fixed_version)
    return SEVERITY_RANK.get(Severity(new.severity), 0) > SEVERITY_RANK.get(
        Severity(old.severity), 0
    )


def _evaluate_packages(
    packages: Iterable[_Pkg], index: dict[tuple[str, str], list[_Affected]]
) -> dict[int, dict[int, _Match]]:
    """{package id: {advisory id: match}} for every affected (or undecidable) pair."""
    results: dict[int, dict[int, _Match]] = {}
    for pkg in packages:
        matches: dict[int, _Match] = {}
        for ecosystem, name, version in pkg.lookups():
            for row in index.get((ecosystem, name), ()):
                verdict: Evaluation = evaluate(
                    ecosystem=ecosystem,
                    version=version,
                    ranges=row.ranges,
                    versions=row.versions,
                    ecosystem_specific=row.ecosystem_specific,
                )
                if not verdict.is_finding:
                    continue
                match = _Match(
                    installed_version=version,
                    fixed_version=verdict.fixed_version if verdict.affected else "",
                    fix_state=verdict.fix_state if verdict.affected else FixState.UNKNOWN,
                    severity=row.severity or Severity.UNKNOWN,
                    matched_name=name,
                    needs_review="" if verdict.affected else verdict.needs_review[:300],
                )
                old = matches.get(row.advisory_id)
                if old is None or _better(match, old):
                    matches[row.advisory_id] = match
        if matches:
            results[pkg.id] = matches
    return results


@dataclass(slots=True)
class _Counts:
    new: int = 0
    resolved: int = 0
    reopened: int = 0
    updated: int = 0


_REFRESHED = ("installed_version", "fixed_version", "fix_state", "severity", "matched_name")


_FINDING_COLUMNS = (
    "id, sbom_id, package_id, advisory_id, resolved_at IS NOT NULL, needs_review, "
    "installed_version, fixed_version, fix_state, severity, matched_name"
)


@dataclass(frozen=True, slots=True)
class _Existing:
    id: int
    sbom_id: int
    package_id: int
    advisory_id: int
    resolved: bool
    needs_review: str
    installed_version: str
    fixed_version: str
    fix_state: str
    severity: str
    matched_name: str


def _existing(where: str, params: Sequence[Any]) -> list[_Existing]:
    """Findings of a scope as plain rows (no model instances: a scope can hold 10⁵)."""
    with connection.cursor() as cursor:
        # `where` is one of this module's constant conditions; values go in `params`.
        sql = f"SELECT {_FINDING_COLUMNS} FROM images_finding WHERE {where}"  # noqa: S608
        cursor.execute(sql, params)
        return [_Existing(*row) for row in cursor.fetchall()]


def _update_ids(sql: str, params: list[Any], ids: list[int]) -> None:
    with connection.cursor() as cursor:
        for start in range(0, len(ids), ID_BATCH):
            cursor.execute(sql, [*params, ids[start : start + ID_BATCH]])


def _reconcile(
    *,
    desired: dict[tuple[int, int, int], _Match],
    existing: Iterable[_Existing],
    present: set[tuple[int, int]],
    now: datetime,
) -> _Counts:
    """Bring the findings of one scope in line with `desired` ((sbom, package, advisory) →
    match); `existing` are all findings of that scope, `present` its (sbom, package) links."""
    counts = _Counts()
    seen: set[tuple[int, int, int]] = set()
    touched: list[int] = []
    changed: list[Finding] = []
    gone: dict[FindingResolution, list[int]] = defaultdict(list)
    stale: list[_Existing] = []
    for row in existing:
        key = (row.sbom_id, row.package_id, row.advisory_id)
        match = desired.get(key)
        if match is None:
            if not row.resolved:
                stale.append(row)
            continue
        seen.add(key)
        dirty = row.resolved or row.needs_review != match.needs_review
        for field in _REFRESHED:
            if getattr(row, field) != getattr(match, field):
                dirty = True
        if not dirty:
            touched.append(row.id)
            continue
        if row.resolved:
            counts.reopened += 1
        finding = Finding(id=row.id, needs_review=match.needs_review, last_seen=now)
        for field in _REFRESHED:
            setattr(finding, field, getattr(match, field))
        finding.resolved_at = None
        finding.resolution = ""
        changed.append(finding)

    if stale:
        withdrawn = set(
            _ids(
                "SELECT id FROM images_advisory WHERE id = ANY(%s) AND withdrawn IS NOT NULL",
                [sorted({f.advisory_id for f in stale})],
            )
        )
        for row in stale:
            if row.advisory_id in withdrawn:
                reason = FindingResolution.WITHDRAWN
            elif (row.sbom_id, row.package_id) not in present:
                reason = FindingResolution.PACKAGE_GONE
            else:
                reason = FindingResolution.FIXED_IN_DATA
            gone[reason].append(row.id)
    for reason, ids in gone.items():
        _update_ids(
            "UPDATE images_finding SET resolved_at = %s, resolution = %s WHERE id = ANY(%s)",
            [now, str(reason)],
            ids,
        )
        counts.resolved += len(ids)
    _update_ids("UPDATE images_finding SET last_seen = %s WHERE id = ANY(%s)", [now], touched)
    if changed:
        Finding.objects.bulk_update(
            changed,
            [*_REFRESHED, "needs_review", "resolved_at", "resolution", "last_seen"],
            batch_size=2000,
        )
    counts.updated = len(changed)
    fresh = [
        Finding(
            sbom_id=sbom_id,
            package_id=package_id,
            advisory_id=advisory_id,
            installed_version=match.installed_version,
            fixed_version=match.fixed_version,
            fix_state=match.fix_state,
            severity=match.severity,
            matched_name=match.matched_name,
            needs_review=match.needs_review,
            last_seen=now,
        )
        for (sbom_id, package_id, advisory_id), match in desired.items()
        if (sbom_id, package_id, advisory_id) not in seen
    ]
    if fresh:
        Finding.objects.bulk_create(fresh, batch_size=2000)
    counts.new = len(fresh)
    return counts


def _ids(sql: str, params: Sequence[Any]) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [int(row[0]) for row in cursor.fetchall()]


_SUMMARY_SQL = """
UPDATE images_imageversion iv SET scan_summary = s.summary
FROM (
  SELECT ids.sbom_id, jsonb_build_object(
    'open', count(f.id),
    'critical', count(f.id) FILTER (WHERE f.severity = 'critical'),
    'high', count(f.id) FILTER (WHERE f.severity = 'high'),
    'medium', count(f.id) FILTER (WHERE f.severity = 'medium'),
    'low', count(f.id) FILTER (WHERE f.severity IN ('low', 'none')),
    'unknown', count(f.id) FILTER (WHERE f.severity = 'unknown'),
    'fixable', count(f.id) FILTER (WHERE f.fix_state = 'fixed'),
    'needs_review', count(f.id) FILTER (WHERE f.needs_review <> ''),
    'matched_at', %s::text) AS summary
  FROM unnest(%s::bigint[]) AS ids(sbom_id)
  LEFT JOIN images_finding f ON f.sbom_id = ids.sbom_id AND f.resolved_at IS NULL
  GROUP BY ids.sbom_id
) s
WHERE iv.sbom_id = s.sbom_id
"""


def _refresh_summaries(sbom_ids: Sequence[int], now: datetime) -> None:
    """`ImageVersion.scan_summary` of every version on these SBOMs, and `Sbom.matched_at`.

    Open findings by severity (`none` counts with `low`), `fixable` (a fix exists),
    `needs_review` and `matched_at`. Binary versions read their SBOM's findings directly.
    """
    ids = sorted(set(sbom_ids))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), ID_BATCH):
            batch = ids[start : start + ID_BATCH]
            cursor.execute(_SUMMARY_SQL, [now.isoformat(), batch])
            Sbom.objects.filter(id__in=batch).update(matched_at=now)


def sbom_match(*, sbom_id: int) -> dict[str, Any]:
    """Match every package of one SBOM against the advisory index and reconcile its findings.

    Returns `{"packages", "open", "new", "resolved", "reopened", "by_severity"}` and
    refreshes `scan_summary` of the image versions on this digest and `Sbom.matched_at`.
    """
    now = timezone.now()
    with transaction.atomic():
        Sbom.objects.select_for_update().filter(id=sbom_id).values_list("id").get()
        packages = _packages_of_sbom(sbom_id)
        index = _affected_index(key[:2] for pkg in packages for key in pkg.lookups())
        results = _evaluate_packages(packages, index)
        desired = {
            (sbom_id, package_id, advisory_id): match
            for package_id, matches in results.items()
            for advisory_id, match in matches.items()
        }
        existing = _existing("sbom_id = %s", [sbom_id])
        present = {(sbom_id, pkg.id) for pkg in packages}
        counts = _reconcile(desired=desired, existing=existing, present=present, now=now)
        _refresh_summaries([sbom_id], now)
    by_severity: dict[str, int] = defaultdict(int)
    for match in desired.values():
        by_severity[match.severity] += 1
    return {
        "packages": len(packages),
        "open": len(desired),
        "new": counts.new,
        "resolved": counts.resolved,
        "reopened": counts.reopened,
        "by_severity": dict(by_severity),
    }


def _valid_keys(keys: Iterable[Any]) -> set[tuple[str, str]]:
    """(ecosystem, name) pairs — tuples, or the lists `AdvisoryImport.changed_keys` holds."""
    out: set[tuple[str, str]] = set()
    for key in keys:
        if (
            not isinstance(key, (tuple, list))
            or len(key) != 2
            or not all(isinstance(part, str) and part for part in key)
        ):
            raise ValueError(f"not an (ecosystem, name) key: {key!r}")
        out.add((key[0], key[1]))
    return out


def findings_rematch(*, keys: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Re-evaluate only the stored packages whose (ecosystem, name or source name) is in `keys`
    and reconcile their findings across every image and binary version (no syft run).

    Returns `{"packages", "sboms", "new", "resolved", "reopened"}`.
    """
    wanted = sorted(_valid_keys(keys))
    if not wanted:
        return {"packages": 0, "sboms": 0, "new": 0, "resolved": 0, "reopened": 0}
    now = timezone.now()
    with transaction.atomic():
        packages = _packages_for_keys(wanted)
        package_ids = sorted(pkg.id for pkg in packages)
        # Every name of those packages: a package's findings are reconciled against all of
        # its advisories, not only the changed ones.
        index = _affected_index(key[:2] for pkg in packages for key in pkg.lookups())
        results = _evaluate_packages(packages, index)
        links: list[tuple[int, int]] = []
        with connection.cursor() as cursor:
            for start in range(0, len(package_ids), ID_BATCH):
                cursor.execute(
                    "SELECT sbom_id, package_id FROM images_sbompackage WHERE package_id = ANY(%s)",
                    [package_ids[start : start + ID_BATCH]],
                )
                links.extend((int(s), int(p)) for s, p in cursor.fetchall())
        desired = {
            (sbom_id, package_id, advisory_id): match
            for sbom_id, package_id in links
            for advisory_id, match in results.get(package_id, {}).items()
        }
        # Lock every SBOM in scope, in id order (sbom_match locks its one): two re-matches, or
        # a re-match and a match, never reconcile the same findings at once.
        scope = {sbom_id for sbom_id, _ in links}
        for start in range(0, len(package_ids), ID_BATCH):
            scope.update(
                _ids(
                    "SELECT DISTINCT sbom_id FROM images_finding WHERE package_id = ANY(%s)",
                    [package_ids[start : start + ID_BATCH]],
                )
            )
        _ids(
            "SELECT id FROM images_sbom WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [sorted(scope)],
        )
        existing: list[_Existing] = []
        for start in range(0, len(package_ids), ID_BATCH):
            existing.extend(
                _existing("package_id = ANY(%s)", [package_ids[start : start + ID_BATCH]])
            )
        counts = _reconcile(desired=desired, existing=existing, present=set(links), now=now)
        sbom_ids = {sbom_id for sbom_id, _ in links} | {f.sbom_id for f in existing}
        _refresh_summaries(sorted(sbom_ids), now)
    return {
        "packages": len(packages),
        "sboms": len(sbom_ids),
        "new": counts.new,
        "resolved": counts.resolved,
        "reopened": counts.reopened,
    }
