"""The one FilterSet per model, shared by the UI list and the API list."""

import datetime as dt

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import ImageKind, ImageStatus, OsFamily, RecipeKind, RequestState
from .models import BaseImage, ImageRequest


class BaseImageFilterSet(django_filters.FilterSet):
    """Catalog filters: kind, OS family, status, toolchain and free-text `q`."""

    kind = django_filters.ChoiceFilter(choices=ImageKind.choices)
    os_family = django_filters.ChoiceFilter(choices=OsFamily.choices, label="OS")
    status = django_filters.ChoiceFilter(choices=ImageStatus.choices)
    toolchain = django_filters.CharFilter(lookup_expr="icontains")
    q = django_filters.CharFilter(method="search", label="Search", max_length=200)
    eol_within = django_filters.NumberFilter(
        method="filter_eol_within",
        label=_("EOL within (days)"),
        min_value=0,
        max_value=3650,
    )

    class Meta:
        model = BaseImage
        fields = ["kind", "os_family", "status", "toolchain", "q", "eol_within"]

    def filter_eol_within(
        self, queryset: QuerySet[BaseImage], name: str, value: object
    ) -> QuerySet[BaseImage]:
        """Images whose OS is not yet past its end of life but reaches it within `value` days."""
        if value is None:
            return queryset
        today = timezone.localdate()
        return queryset.filter(
            eol_date__gt=today, eol_date__lte=today + dt.timedelta(days=int(str(value)))
        )

    def search(self, queryset: QuerySet[BaseImage], name: str, value: str) -> QuerySet[BaseImage]:
        """Match name, description, toolchain or OS version."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(toolchain__icontains=value)
            | Q(os_version__icontains=value)
        )


class ImageRequestFilterSet(django_filters.FilterSet):
    """Request filters: state, kind, recipe kind and free-text `q` (name, tag, justification)."""

    state = django_filters.ChoiceFilter(choices=RequestState.choices)
    kind = django_filters.ChoiceFilter(choices=ImageKind.choices)
    recipe_kind = django_filters.ChoiceFilter(choices=RecipeKind.choices)
    q = django_filters.CharFilter(method="search", label="Search", max_length=200)

    class Meta:
        model = ImageRequest
        fields = ["state", "kind", "recipe_kind", "q"]

    def search(
        self, queryset: QuerySet[ImageRequest], name: str, value: str
    ) -> QuerySet[ImageRequest]:
        """Match name, tag or justification."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value) | Q(tag__icontains=value) | Q(justification__icontains=value)
        )
