"""Matches into findings: open, refresh, reopen, resolve (never delete); summaries, events."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q

from images.choices import FindingResolution, FixState, Severity
from images.models import (
    Advisory,
    Finding,
    ImageVersion,
    Sbom,
)
from images.services.findings.evaluate import _Match
from portal.events import EventType, event_emit, event_wanted

# Ids per query, under SQLite's bound-variable limit like `evaluate.KEY_BATCH`.
ID_BATCH = 10000


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
