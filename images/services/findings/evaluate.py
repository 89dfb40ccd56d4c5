"""The advisory index by (ecosystem, name) key, and one evaluation per package (binary, source)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Value
from django.db.models.functions import Coalesce, NullIf

from images.choices import SEVERITY_RANK, FixState, Severity
from images.models import (
    AffectedPackage,
    Package,
)
from images.vulns.osv import Evaluation, evaluate

# Keys and ids per query: well under SQLite's 32,766 bound variables (`make run` runs on
# SQLite; the same ORM queries run on PostgreSQL in tests and production).
KEY_BATCH = 5000


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
