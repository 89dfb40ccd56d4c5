"""The one FilterSet per model, shared by the UI lists and the API lists."""

from __future__ import annotations

import datetime as dt

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from images.choices import ImageStatus, VersionState

from .choices import BinaryState, DeploymentMode, Language
from .models import BinaryVersion, Deployment, Service


class ServiceFilterSet(django_filters.FilterSet):
    """Services: team, language and free-text `q` (name, description, repo URL)."""

    team = django_filters.CharFilter(field_name="team__name")
    language = django_filters.ChoiceFilter(choices=Language.choices)
    q = django_filters.CharFilter(method="search", label="Search", max_length=200)

    class Meta:
        model = Service
        fields = ["team", "language", "q"]

    def search(self, queryset: QuerySet[Service], name: str, value: str) -> QuerySet[Service]:
        """Match name, description or repository URL."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(repo_url__icontains=value)
        )


class BinaryVersionFilterSet(django_filters.FilterSet):
    """Binary versions: service, arch, state, linkage and `q` (version, sha256 prefix, commit)."""

    service = django_filters.CharFilter(field_name="service__name")
    arch = django_filters.CharFilter()
    state = django_filters.ChoiceFilter(choices=BinaryState.choices)
    linkage = django_filters.CharFilter()
    q = django_filters.CharFilter(method="search", label="Search", max_length=200)

    class Meta:
        model = BinaryVersion
        fields = ["service", "arch", "state", "linkage", "q"]

    def search(
        self, queryset: QuerySet[BinaryVersion], name: str, value: str
    ) -> QuerySet[BinaryVersion]:
        """Match the version, a sha256 prefix or the commit."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(version__icontains=value)
            | Q(sha256__startswith=value.lower())
            | Q(commit__istartswith=value)
        )


def vulnerable_base_q(prefix: str = "runtime_version__") -> Q:
    """Rows whose runtime image version has open Critical or High findings (its scan summary)."""
    return Q(**{f"{prefix}scan_summary__critical__gt": 0}) | Q(
        **{f"{prefix}scan_summary__high__gt": 0}
    )


def eol_q(today: dt.date, *, within_days: int = 0, prefix: str = "runtime_version__") -> Q:
    """Rows whose base image's OS reaches its end of life by `today + within_days`."""
    return Q(**{f"{prefix}base_image__eol_date__lte": today + dt.timedelta(days=within_days)})


class DeploymentFilterSet(django_filters.FilterSet):
    """Deployments: service, environment, mode, team, and the state of their runtime base
    (the dashboard's links: catalog status, version state, past or near EOL, vulnerable)."""

    service = django_filters.CharFilter(field_name="service__name")
    environment = django_filters.CharFilter(field_name="environment__name")
    mode = django_filters.ChoiceFilter(choices=DeploymentMode.choices)
    team = django_filters.CharFilter(field_name="service__team__name", label=_("Team"))
    base_image = django_filters.CharFilter(
        field_name="runtime_version__base_image__name", label=_("Base image")
    )
    base_status = django_filters.ChoiceFilter(
        field_name="runtime_version__base_image__status",
        choices=ImageStatus.choices,
        label=_("Base image status"),
    )
    version_state = django_filters.ChoiceFilter(
        field_name="runtime_version__state",
        choices=VersionState.choices,
        label=_("Runtime version state"),
    )
    eol = django_filters.BooleanFilter(method="filter_eol", label=_("Base past its EOL"))
    eol_within = django_filters.NumberFilter(
        method="filter_eol_within",
        label=_("Base reaches EOL within (days)"),
        min_value=0,
        max_value=3650,
    )
    vulnerable = django_filters.BooleanFilter(
        method="filter_vulnerable", label=_("Base has open Critical/High findings")
    )

    class Meta:
        model = Deployment
        fields = [
            "service",
            "environment",
            "mode",
            "team",
            "base_image",
            "base_status",
            "version_state",
            "eol",
            "eol_within",
            "vulnerable",
        ]

    def filter_eol(
        self, queryset: QuerySet[Deployment], name: str, value: bool | None
    ) -> QuerySet[Deployment]:
        """`eol=true`: the base's OS is past its end of life today; `false`: it is not."""
        if value is None:
            return queryset
        q = eol_q(timezone.localdate())
        return queryset.filter(q) if value else queryset.exclude(q)

    def filter_eol_within(
        self, queryset: QuerySet[Deployment], name: str, value: object
    ) -> QuerySet[Deployment]:
        """Bases not yet past EOL that reach it within `value` days."""
        if value is None:
            return queryset
        today = timezone.localdate()
        return queryset.filter(eol_q(today, within_days=int(str(value)))).exclude(eol_q(today))

    def filter_vulnerable(
        self, queryset: QuerySet[Deployment], name: str, value: bool | None
    ) -> QuerySet[Deployment]:
        """`vulnerable=true`: open Critical or High findings on the runtime version."""
        if value is None:
            return queryset
        q = vulnerable_base_q()
        return queryset.filter(q) if value else queryset.exclude(q)
