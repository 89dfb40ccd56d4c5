"""The one FilterSet per model, shared by the UI list and the API list."""

import django_filters
from django.db.models import Q, QuerySet

from .choices import ImageKind, ImageStatus, OsFamily, RecipeKind, RequestState
from .models import BaseImage, ImageRequest


class BaseImageFilterSet(django_filters.FilterSet):
    """Catalog filters: kind, OS family, status, toolchain and free-text `q`."""

    kind = django_filters.ChoiceFilter(choices=ImageKind.choices)
    os_family = django_filters.ChoiceFilter(choices=OsFamily.choices, label="OS")
    status = django_filters.ChoiceFilter(choices=ImageStatus.choices)
    toolchain = django_filters.CharFilter(lookup_expr="icontains")
    q = django_filters.CharFilter(method="search", label="Search", max_length=200)

    class Meta:
        model = BaseImage
        fields = ["kind", "os_family", "status", "toolchain", "q"]

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
