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

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from portal.events import EventType, event_emit, event_wanted

from ..choices import SEVERITY_RANK, FindingResolution, FixState, Severity
from ..models import (
    Advisory,
    AffectedPackage,
    Finding,
    ImageVersion,
    Package,
    Sbom,
    SbomPackage,
)
from ..vulns.osv import Evaluation, evaluate

# Keys and ids per query: well under SQLite's 32,766 bound variables (`make run` runs on
# SQLite; the same ORM queries run on PostgreSQL in tests and production).
KEY_BATCH = 5000
ID_BATCH = 10000


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
    package_name: str = ""  # copied onto a new finding (its list order, FINDING_ORDER)


_PKG_FIELDS = ("id", "ecosystem", "name", "version", "source_name", "source_version")


def _key_batches(keys: Sequence[tuple[str, str]]) -> Iterable[tuple[set[str], set[str]]]:
    """(ecosystems, names) of each batch of keys: `ecosystem IN … AND name IN …` uses the
    (ecosystem, name) indexes on every database; the caller keeps the exact pairs."""
    for start in range(0, len(keys), KEY_BATCH):
        batch = keys[start : start + KEY_BATCH]
        yield {k[0] for k in batch}, {k[1] for k in batch}


def _packages_of_sbom(sbom_id: int) -> list[_Pkg]:
    rows = Package.objects.filter(sbom_links__sbom_id=sbom_id).values_list(*_PKG_FIELDS)
    return [_Pkg(*row) for row in rows]


def _packages_for_keys(keys: list[tuple[str, str]]) -> list[_Pkg]:
    wanted = set(keys)
    found: dict[int, _Pkg] = {}
    for ecosystems, names in _key_batches(keys):
        for column in ("name", "source_name"):
            rows = Package.objects.filter(
                **{"ecosystem__in": ecosystems, f"{column}__in": names}
            ).values_list(*_PKG_FIELDS)
            for row in rows:
                pkg = _Pkg(*row)
                if (pkg.ecosystem, getattr(pkg, column)) in wanted:
                    found[pkg.id] = pkg
    return list(found.values())


def _affected_index(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[_Affected]]:
    """Matchable affected rows (not quarantined, advisory not withdrawn) for the keys."""
    wanted = sorted(set(keys))
    exact = set(wanted)
    index: dict[tuple[str, str], list[_Affected]] = defaultdict(list)
    for ecosystems, names in _key_batches(wanted):
        rows = (
            AffectedPackage.objects.filter(
                ecosystem__in=ecosystems,
                name__in=names,
                quarantined="",
                advisory__withdrawn__isnull=True,
            )
            .annotate(rating=Coalesce(NullIf("severity", Value("")), "advisory__severity"))
            .values_list(
                "advisory_id",
                "ecosystem",
                "name",
                "ranges",
                "versions",
                "ecosystem_specific",
                "rating",
            )
        )
        for adv, eco, name, ranges, versions, specific, severity in rows:
            if (eco, name) in exact:
                index[(eco, name)].append(
                    _Affected(adv, eco, name, ranges, versions, specific, severity)
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
                    package_name=pkg.name,
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
    new_by_sbom: dict[int, dict[str, int]] = dataclasses.field(default_factory=dict)


_REFRESHED = ("installed_version", "fixed_version", "fix_state", "severity", "matched_name")


_FINDING_FIELDS = (
    "id",
    "sbom_id",
    "package_id",
    "advisory_id",
    "resolved_at",
    "needs_review",
    "installed_version",
    "fixed_version",
    "fix_state",
    "severity",
    "matched_name",
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


def _existing(**scope: Any) -> list[_Existing]:
    """Findings of a scope as plain rows (no model instances: a scope can hold 10⁵)."""
    rows = Finding.objects.filter(**scope).values_list(*_FINDING_FIELDS)
    return [
        _Existing(r[0], r[1], r[2], r[3], r[4] is not None, *r[5:])  # resolved_at → resolved
        for r in rows
    ]


def _batches(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), ID_BATCH):
        yield ids[start : start + ID_BATCH]


def _update_ids(ids: list[int], **values: Any) -> None:
    for batch in _batches(ids):
        Finding.objects.filter(id__in=batch).update(**values)


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
            Advisory.objects.filter(
                id__in=sorted({f.advisory_id for f in stale}), withdrawn__isnull=False
            ).values_list("id", flat=True)
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
        _update_ids(ids, resolved_at=now, resolution=str(reason))
        counts.resolved += len(ids)
    _update_ids(touched, last_seen=now)
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
            package_name=match.package_name,
            last_seen=now,
        )
        for (sbom_id, package_id, advisory_id), match in desired.items()
        if (sbom_id, package_id, advisory_id) not in seen
    ]
    if fresh:
        Finding.objects.bulk_create(fresh, batch_size=2000)
    counts.new = len(fresh)
    for finding in fresh:
        per = counts.new_by_sbom.setdefault(finding.sbom_id, defaultdict(int))
        per[finding.severity] += 1
    return counts


def _announce_new_findings(counts: _Counts) -> None:
    """A `finding.created` event per SBOM that got new findings (in the caller's transaction).

    An image version's findings are public like the catalog (its owner team named); any
    other SBOM's (a binary's) reach the platform teams only: this layer cannot see whose
    binary it is.
    """
    if not counts.new_by_sbom or not event_wanted(EventType.FINDING_CREATED):
        return
    versions: dict[int, list[ImageVersion]] = defaultdict(list)
    for version in ImageVersion.objects.filter(
        sbom_id__in=sorted(counts.new_by_sbom)
    ).select_related("base_image__owner_team"):
        if version.sbom_id is not None:
            versions[version.sbom_id].append(version)
    digests = dict(
        Sbom.objects.filter(id__in=sorted(counts.new_by_sbom)).values_list("id", "digest")
    )
    for sbom_id, by_severity in sorted(counts.new_by_sbom.items()):
        on = versions.get(sbom_id, [])
        event_emit(
            type=EventType.FINDING_CREATED,
            team=on[0].base_image.owner_team if on else None,
            subject=f"sboms/{sbom_id}",
            data={
                "digest": digests.get(sbom_id, ""),
                "new": sum(by_severity.values()),
                "by_severity": dict(by_severity),
                "image_versions": [
                    {"id": v.pk, "reference": f"{v.base_image.name}:{v.tag}"} for v in on
                ],
            },
            public=bool(on),
        )


def _summary(row: Mapping[str, Any], matched_at: str) -> dict[str, Any]:
    return {
        "open": row.get("open", 0),
        "critical": row.get("critical", 0),
        "high": row.get("high", 0),
        "medium": row.get("medium", 0),
        "low": row.get("low", 0),
        "unknown": row.get("unknown", 0),
        "fixable": row.get("fixable", 0),
        "needs_review": row.get("needs_review", 0),
        "matched_at": matched_at,
    }


def _refresh_summaries(sbom_ids: Sequence[int], now: datetime) -> None:
    """`ImageVersion.scan_summary` of every version on these SBOMs, and `Sbom.matched_at`.

    Open findings by severity (`none` counts with `low`), `fixable` (a fix exists),
    `needs_review` and `matched_at`: one aggregate query and one bulk update per batch.
    Binary versions read their SBOM's findings directly.
    """
    ids = sorted(set(sbom_ids))
    matched_at = now.isoformat()
    for batch in _batches(ids):
        counts: dict[int, Mapping[str, Any]] = {
            row["sbom_id"]: row
            for row in Finding.objects.filter(sbom_id__in=batch, resolved_at__isnull=True)
            .values("sbom_id")
            .annotate(
                open=Count("id"),
                critical=Count("id", filter=Q(severity=Severity.CRITICAL)),
                high=Count("id", filter=Q(severity=Severity.HIGH)),
                medium=Count("id", filter=Q(severity=Severity.MEDIUM)),
                low=Count("id", filter=Q(severity__in=[Severity.LOW, Severity.NONE])),
                unknown=Count("id", filter=Q(severity=Severity.UNKNOWN)),
                fixable=Count("id", filter=Q(fix_state=FixState.FIXED)),
                needs_review=Count("id", filter=~Q(needs_review="")),
            )
        }
        versions = list(ImageVersion.objects.filter(sbom_id__in=batch).only("id", "sbom_id"))
        for version in versions:
            assert version.sbom_id is not None  # noqa: S101 - filtered on it
            version.scan_summary = _summary(counts.get(version.sbom_id, {}), matched_at)
        ImageVersion.objects.bulk_update(versions, ["scan_summary"], batch_size=500)
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
        existing = _existing(sbom_id=sbom_id)
        present = {(sbom_id, pkg.id) for pkg in packages}
        counts = _reconcile(desired=desired, existing=existing, present=present, now=now)
        _refresh_summaries([sbom_id], now)
        _announce_new_findings(counts)
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
        for batch in _batches(package_ids):
            links.extend(
                SbomPackage.objects.filter(package_id__in=batch).values_list(
                    "sbom_id", "package_id"
                )
            )
        desired = {
            (sbom_id, package_id, advisory_id): match
            for sbom_id, package_id in links
            for advisory_id, match in results.get(package_id, {}).items()
        }
        # Lock every SBOM in scope, in id order (sbom_match locks its one): two re-matches, or
        # a re-match and a match, never reconcile the same findings at once.
        scope = {sbom_id for sbom_id, _ in links}
        for batch in _batches(package_ids):
            scope.update(
                Finding.objects.filter(package_id__in=batch)
                .values_list("sbom_id", flat=True)
                .distinct()
            )
        for batch in _batches(sorted(scope)):
            list(
                Sbom.objects.select_for_update()
                .filter(id__in=batch)
                .order_by("id")
                .values_list("id", flat=True)
            )
        existing: list[_Existing] = []
        for batch in _batches(package_ids):
            existing.extend(_existing(package_id__in=batch))
        counts = _reconcile(desired=desired, existing=existing, present=set(links), now=now)
        sbom_ids = {sbom_id for sbom_id, _ in links} | {f.sbom_id for f in existing}
        _refresh_summaries(sorted(sbom_ids), now)
        _announce_new_findings(counts)
    return {
        "packages": len(packages),
        "sboms": len(sbom_ids),
        "new": counts.new,
        "resolved": counts.resolved,
        "reopened": counts.reopened,
    }
