"""Reads of scans: an image version's findings, advisory search and aliases, the findings chart.

Each read is a constant number of queries, whatever the page size. The blast radius (which
deployments run an advisory) is composed one layer up, in `deployments.selectors.impact`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from .choices import SEVERITY_RANK, AliasKind, FixState, Severity
from .models import (
    FINDING_ORDER,
    Advisory,
    AdvisoryAlias,
    BaseImage,
    Finding,
    ImageVersion,
    Waiver,
)
from .services.waivers import active_waivers_for

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class FilterError(ValueError):
    """A filter value the read does not understand: `field` names the parameter (a 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_bool(raw: str | None, *, field: str) -> bool | None:
    """`true`/`false` (also 1/0, yes/no), None for absent or blank.

    Raises:
        FilterError: any other value.
    """
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FilterError(field, gettext("Use true or false, not %(raw)r.") % {"raw": raw[:40]})


def parse_severities(raw: str | None, *, field: str = "severity") -> tuple[str, ...]:
    """A comma list of severities (`critical,high`), each one known; () when absent.

    Raises:
        FilterError: an unknown severity.
    """
    if raw is None or not raw.strip():
        return ()
    values = tuple(dict.fromkeys(v.strip().lower() for v in raw.split(",") if v.strip()))
    unknown = [v for v in values if v not in Severity.values]
    if unknown:
        raise FilterError(
            field,
            gettext("Unknown severity %(items)s; use a comma list of %(values)s.")
            % {
                "items": ", ".join(repr(v[:20]) for v in unknown),
                "values": ", ".join(Severity.values),
            },
        )
    return values


# --- findings of one image version ----------------------------------------------------------


@dataclass(frozen=True)
class FindingFilters:
    """What a findings list is narrowed to (parsed from query parameters)."""

    severities: tuple[str, ...] = ()
    fix_state: str = ""
    package: str = ""
    waived: bool | None = None
    include_resolved: bool = False

    @classmethod
    def parse(cls, params: Any) -> FindingFilters:
        """From a QueryDict-like mapping.

        Raises:
            FilterError: an unknown severity or fix state, a non-boolean `waived` or
                `include_resolved`, or a package filter over 255 characters.
        """
        fix_state = (params.get("fix_state") or "").strip().lower()
        if fix_state and fix_state not in FixState.values:
            raise FilterError(
                "fix_state",
                gettext("Unknown fix state %(fix_state)r; use one of %(values)s.")
                % {"fix_state": fix_state[:30], "values": ", ".join(FixState.values)},
            )
        package = (params.get("package") or "").strip()
        if len(package) > 255:
            raise FilterError("package", gettext("A package filter has at most 255 characters."))
        if "\x00" in package:
            raise FilterError("package", gettext("A package filter cannot contain NUL characters."))
        return cls(
            severities=parse_severities(params.get("severity")),
            fix_state=fix_state,
            package=package,
            waived=parse_bool(params.get("waived"), field="waived"),
            include_resolved=bool(
                parse_bool(params.get("include_resolved"), field="include_resolved")
            ),
        )

    @property
    def active(self) -> bool:
        """Whether anything narrows the list."""
        return bool(
            self.severities
            or self.fix_state
            or self.package
            or self.waived is not None
            or self.include_resolved
        )


@dataclass
class FindingList:
    """An image version's findings, ordered, with the waivers that cover them."""

    findings: QuerySet[Finding]
    waivers: dict[int, Waiver] = field(default_factory=dict)
    waivers_complete: bool = False


def _waiver_context(version: ImageVersion) -> dict[str, Any]:
    return {
        "image_version_id": version.pk,
        "base_image_id": version.base_image_id,
        "team_id": version.base_image.owner_team_id,
    }


def image_version_findings(*, version: ImageVersion, filters: FindingFilters) -> FindingList:
    """The findings of `version`'s scan, worst first: severity, fixable first, package
    (`FINDING_ORDER`, the columns of the `finding_sbom_*worst` indexes: page it by keyset).

    Open findings only unless `include_resolved`. A `waived` filter asks the waiver
    selector about every candidate finding (one query of theirs), so it holds across pages;
    otherwise the caller asks for the shown page only (`findings_waivers`).
    """
    findings = (
        Finding.objects.select_related("package", "advisory")
        .prefetch_related(
            Prefetch("advisory__aliases", queryset=AdvisoryAlias.objects.order_by("alias"))
        )
        .order_by(*FINDING_ORDER)
    )
    if version.sbom_id is None:
        return FindingList(findings=findings.none(), waivers_complete=True)
    findings = findings.filter(sbom_id=version.sbom_id)
    if not filters.include_resolved:
        findings = findings.filter(resolved_at__isnull=True)
    if filters.severities:
        findings = findings.filter(severity__in=filters.severities)
    if filters.fix_state:
        findings = findings.filter(fix_state=filters.fix_state)
    if filters.package:
        findings = findings.filter(package__name__icontains=filters.package)
    if filters.waived is None:
        return FindingList(findings=findings)
    # Whole rows (package, advisory and its aliases loaded): the waiver selector matches on
    # the advisory's ids and the package's name.
    candidates = list(findings)
    waivers = active_waivers_for(candidates, **_waiver_context(version))
    ids = set(waivers)
    findings = findings.filter(pk__in=ids) if filters.waived else findings.exclude(pk__in=ids)
    return FindingList(findings=findings, waivers=waivers, waivers_complete=True)


def findings_waivers(
    *, version: ImageVersion, listing: FindingList, page: list[Finding]
) -> dict[int, Waiver]:
    """The active waivers of the shown `page` (those already known when the list was waived-
    filtered)."""
    if listing.waivers_complete:
        return listing.waivers
    return active_waivers_for(page, **_waiver_context(version))


def image_version_for_findings(pk: int) -> ImageVersion:
    """An image version with what its page shows (base image, registry, scan).

    Raises:
        ImageVersion.DoesNotExist: no such version.
    """
    return ImageVersion.objects.select_related(
        "base_image", "base_image__owner_team", "registry", "sbom", "build_job"
    ).get(pk=pk)


# --- advisories ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvisoryFilters:
    """CVE search: a text (id, alias or summary) and narrowing filters."""

    q: str = ""
    severities: tuple[str, ...] = ()
    ecosystem: str = ""
    package: str = ""
    withdrawn: bool | None = None

    @classmethod
    def parse(cls, params: Any) -> AdvisoryFilters:
        """From a QueryDict-like mapping.

        Raises:
            FilterError: an unknown severity, a non-boolean `withdrawn`, an over-long text.
        """
        values = {k: (params.get(k) or "").strip() for k in ("q", "ecosystem", "package")}
        for key, value in values.items():
            if len(value) > 255:
                raise FilterError(
                    key, gettext("%(key)s has at most 255 characters.") % {"key": key}
                )
            if "\x00" in value:
                raise FilterError(
                    key, gettext("%(key)s cannot contain NUL characters.") % {"key": key}
                )
        return cls(
            q=values["q"],
            severities=parse_severities(params.get("severity")),
            ecosystem=values["ecosystem"],
            package=values["package"],
            withdrawn=parse_bool(params.get("withdrawn"), field="withdrawn"),
        )


def _open_findings_count() -> Coalesce:
    counts = (
        Finding.objects.filter(advisory=OuterRef("pk"), resolved_at__isnull=True)
        .order_by()
        .values("advisory")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def advisory_list() -> QuerySet[Advisory]:
    """Advisories with aliases and their open-findings count (the record JSON deferred)."""
    return (
        Advisory.objects.defer("record", "details")
        .prefetch_related(Prefetch("aliases", queryset=AdvisoryAlias.objects.order_by("alias")))
        .annotate(open_findings=_open_findings_count())
    )


def advisory_search(filters: AdvisoryFilters) -> QuerySet[Advisory]:
    """Advisories matching `filters.q` by id or alias (case-insensitive) or summary text;
    exact id/alias matches first, then the most recently modified."""
    advisories = advisory_list()
    q = filters.q
    if q:
        alias_exact = AdvisoryAlias.objects.filter(advisory=OuterRef("pk"), alias__iexact=q)
        alias_part = AdvisoryAlias.objects.filter(advisory=OuterRef("pk"), alias__icontains=q)
        advisories = advisories.filter(
            Q(osv_id__icontains=q) | Q(Exists(alias_part)) | Q(summary__icontains=q)
        ).annotate(
            exact=Case(
                When(osv_id__iexact=q, then=Value(0)),
                When(Exists(alias_exact), then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        advisories = advisories.order_by("exact", "-modified", "osv_id")
    else:
        advisories = advisories.order_by("-modified", "osv_id")
    if filters.severities:
        advisories = advisories.filter(severity__in=filters.severities)
    if filters.ecosystem or filters.package:
        affected = Q()
        if filters.ecosystem:
            affected &= Q(ecosystem__iexact=filters.ecosystem)
        if filters.package:
            affected &= Q(name__iexact=filters.package)
        from .models import AffectedPackage

        advisories = advisories.filter(
            Exists(AffectedPackage.objects.filter(affected, advisory=OuterRef("pk")))
        )
    if filters.withdrawn is not None:
        advisories = advisories.filter(withdrawn__isnull=not filters.withdrawn)
    return advisories


def advisory_detail() -> QuerySet[Advisory]:
    """Advisories with what one advisory's page shows: aliases, affected rows, counts."""
    return Advisory.objects.prefetch_related(
        Prefetch("aliases", queryset=AdvisoryAlias.objects.order_by("kind", "alias")),
        "affected",
    ).annotate(
        open_findings=_open_findings_count(),
        affected_sboms=Coalesce(
            Subquery(
                Finding.objects.filter(advisory=OuterRef("pk"), resolved_at__isnull=True)
                .order_by()
                .values("advisory")
                .annotate(n=Count("sbom_id", distinct=True))
                .values("n"),
                output_field=IntegerField(),
            ),
            Value(0),
        ),
    )


def advisory_get(osv_id: str, queryset: QuerySet[Advisory] | None = None) -> Advisory | None:
    """The advisory with this OSV id (exact, else case-insensitive), or None."""
    advisories = queryset if queryset is not None else Advisory.objects.all()
    found = advisories.filter(osv_id=osv_id).first()
    if found is None:
        found = advisories.filter(osv_id__iexact=osv_id).order_by("osv_id").first()
    return found


_SAME = (AliasKind.ALIAS, AliasKind.UPSTREAM)


def advisory_resolve(ref: str) -> Advisory | None:
    """The advisory `ref` names: its OSV id, else the newest record that aliases it (exact
    spelling first, then case-insensitive), or None."""
    found = advisory_get(ref)
    if found is not None:
        return found
    by_alias = Advisory.objects.filter(aliases__kind__in=_SAME).order_by("-modified", "osv_id")
    return (
        by_alias.filter(aliases__alias=ref).first()
        or by_alias.filter(aliases__alias__iexact=ref).first()
    )


def _names(advisory: Advisory) -> set[str]:
    return {advisory.osv_id, *(a.alias for a in advisory.aliases.all() if a.kind in _SAME)}


def advisory_family(ref: str) -> list[Advisory]:
    """Every advisory that is the same vulnerability as `ref`: the record `ref` names and the
    records aliasing it in either direction (`aliases` and `upstream`, not `related`), two
    hops: CVE-X → the DSA-/DEBIAN-/UBUNTU- records naming CVE-X → the ids those name.

    Ids match by their stored spelling (indexed, exact). The record `ref` names comes first;
    [] when `ref` names nothing.
    """
    first = advisory_resolve(ref)
    if first is None:
        return []
    family: dict[int, Advisory] = {first.pk: first}
    names = {ref, first.osv_id}
    names.update(
        AdvisoryAlias.objects.filter(advisory=first, kind__in=_SAME).values_list("alias", flat=True)
    )
    for _hop in range(2):
        matched = AdvisoryAlias.objects.filter(alias__in=sorted(names), kind__in=_SAME).values(
            "advisory_id"
        )
        found = list(
            Advisory.objects.defer("record", "details")
            .filter(Q(osv_id__in=sorted(names)) | Q(pk__in=matched))
            .exclude(pk__in=sorted(family))
            .prefetch_related("aliases")
        )
        if not found:
            break
        for advisory in found:
            family[advisory.pk] = advisory
            names |= _names(advisory)
    rest = sorted((a for a in family.values() if a.pk != first.pk), key=lambda a: a.osv_id)
    return [first, *rest]


# --- the findings chart ------------------------------------------------------------------------

CHART_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)


def base_image_findings_history(
    image: BaseImage, *, days: int = 90, today: dt.date | None = None
) -> dict[str, Any]:
    """Open findings of `image` by severity per day, the last `days` days (oldest first).

    A finding counts on a day when it was open at that day's end (first seen on or before it,
    resolved after it or never). The same advisory in the same package counts once however
    many of the image's versions carry it. Severities other than critical/high/medium/low
    count as `unknown`. One query.
    """
    today = today or timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    start_at = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    rows = (
        Finding.objects.filter(sbom__image_versions__base_image=image)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start_at))
        .values_list("advisory_id", "package_id", "severity", "first_seen", "resolved_at")
        .distinct()
    )
    intervals: dict[tuple[int, int], list[tuple[int, int]]] = {}
    worst: dict[tuple[int, int], Severity] = {}
    for advisory_id, package_id, severity, first_seen, resolved_at in rows:
        key = (advisory_id, package_id)
        first = max((first_seen.date() - start).days, 0)
        # Open at the end of day d when resolved after it: the last day counted is the day
        # before the resolution (a finding resolved today is not open tonight).
        last = days - 1 if resolved_at is None else (resolved_at.date() - start).days - 1
        if last < first or first > days - 1:
            continue
        intervals.setdefault(key, []).append((first, min(last, days - 1)))
        bucket = Severity(severity) if severity in CHART_SEVERITIES else Severity.UNKNOWN
        old = worst.get(key)
        if old is None or SEVERITY_RANK[bucket] > SEVERITY_RANK[old]:
            worst[key] = bucket
    series_keys = [*CHART_SEVERITIES, Severity.UNKNOWN]
    diff = {s: [0] * (days + 1) for s in series_keys}
    for key, spans in intervals.items():
        spans.sort()
        merged: list[list[int]] = []
        for first, last in spans:
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        for first, last in merged:
            diff[worst[key]][first] += 1
            diff[worst[key]][last + 1] -= 1
    series: dict[str, list[int]] = {}
    for severity in series_keys:
        running, values = 0, []
        for delta in diff[severity][:days]:
            running += delta
            values.append(running)
        series[str(severity)] = values
    labels = [(start + dt.timedelta(days=i)).isoformat() for i in range(days)]
    return {"labels": labels, "series": series, "total": sum(v[-1] for v in series.values())}
