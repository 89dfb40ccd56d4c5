"""The two ways in: match one SBOM (after a scan), re-match the keys an advisory import changed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from images.models import (
    Finding,
    Sbom,
    SbomPackage,
)
from images.services.findings.evaluate import (
    _affected_index,
    _evaluate_packages,
    _packages_for_keys,
    _packages_of_sbom,
)
from images.services.findings.reconcile import (
    _announce_new_findings,
    _batches,
    _Existing,
    _existing,
    _reconcile,
    _refresh_summaries,
)


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
