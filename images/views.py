"""UI views of the images app: the catalog list and a catalog entry."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.views.generic import DetailView, TemplateView

from .filtersets import BaseImageFilterSet
from .models import BaseImage
from .selectors import base_image_detail, base_image_list, image_version_current
from .snippets import render_from_line, render_volume_pod

PAGE_SIZES = (10, 25, 50, 100)


class BaseImageListView(LoginRequiredMixin, TemplateView):
    """The catalog with filters, search and pagination that keeps the filters."""

    template_name = "images/baseimage_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        filterset = BaseImageFilterSet(self.request.GET or None, queryset=base_image_list())
        images: QuerySet[BaseImage] = (
            filterset.qs if filterset.is_bound and filterset.is_valid() else base_image_list()
        )
        try:
            page_size = int(self.request.GET.get("page_size", 25))
        except ValueError:
            page_size = 25
        page_size = page_size if page_size in PAGE_SIZES else 25
        page = Paginator(images, page_size).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(
            filterset=filterset,
            page=page,
            query=query.urlencode(),
            filtered=any(v for k, v in self.request.GET.items() if k not in {"page", "page_size"}),
            page_size=page_size,
            page_sizes=PAGE_SIZES,
            errors=filterset.errors if filterset.is_bound else {},
        )
        return context


class BaseImageDetailView(LoginRequiredMixin, DetailView):
    """One catalog entry: versions, status, EOL, replacement and usage snippets."""

    template_name = "images/baseimage_detail.html"
    context_object_name = "image"

    def get_queryset(self) -> QuerySet[BaseImage]:
        return base_image_detail()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        image: BaseImage = self.object
        current = image_version_current(image)
        context["current"] = current
        context["versions"] = list(image.versions.all())
        if current is not None:
            context["from_line"] = render_from_line(current.pull_ref)
            context["pod_yaml"] = render_volume_pod(pull_ref=current.pull_ref, name="my-service")
        return context
