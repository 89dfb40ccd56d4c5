"""The one FilterSet per model, shared by the UI lists and the API lists."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

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


class DeploymentFilterSet(django_filters.FilterSet):
    """Deployments: service, environment, mode."""

    service = django_filters.CharFilter(field_name="service__name")
    environment = django_filters.CharFilter(field_name="environment__name")
    mode = django_filters.ChoiceFilter(choices=DeploymentMode.choices)

    class Meta:
        model = Deployment
        fields = ["service", "environment", "mode"]
