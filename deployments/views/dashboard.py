"""The home page (the dashboard), the deployments list its links land on, the navigation's
review-queue badge and the search page: composed here because they read both apps."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from images.choices import ImageStatus, VersionState

from ..choices import DeploymentMode
from ..filtersets import DeploymentFilterSet
from ..models import Environment
from ..selectors import deployment_list_for_actor
from ..selectors.dashboard import (
    RISKS,
    dashboard_for_actor,
    deployments_by_base_over_time,
    review_queue_count,
)
from ..selectors.search import SearchQueryError, search_for_actor, search_normalise
from ._common import _page, _reader


class DashboardView(LoginRequiredMixin, TemplateView):
    """The home page: the catalog's standing, deployments at risk per team, the EOL horizon,
    the review queue, deployments by base image over time, volume versus image mode."""

    template_name = "deployments/dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        dashboard = dashboard_for_actor(_reader(self.request), with_chart=False)
        context.update(dashboard=dashboard, risks=RISKS)
        return context


class DashboardChartView(LoginRequiredMixin, View):
    """The dashboard's chart as an htmx fragment: the page shows its numbers first, and the
    chart (the replay of 90 days of releases) follows."""

    def get(self, request: HttpRequest) -> HttpResponse:
        chart = deployments_by_base_over_time(_reader(request), timezone.now())
        return render(request, "deployments/_dashboard_chart.html", {"chart": chart})


class DeploymentListView(LoginRequiredMixin, TemplateView):
    """Every deployment the user may read, filtered as the dashboard's links ask."""

    template_name = "deployments/deployment_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        readable = deployment_list_for_actor(_reader(self.request))
        filterset = DeploymentFilterSet(self.request.GET or None, queryset=readable)
        invalid = filterset.is_bound and not filterset.is_valid()
        deployments = filterset.qs if filterset.is_bound and not invalid else readable
        context.update(
            filterset=filterset,
            invalid=invalid,
            filtered=any(v for k, v in self.request.GET.items() if k not in {"page", "page_size"}),
            modes=DeploymentMode.choices,
            statuses=ImageStatus.choices,
            version_states=VersionState.choices,
            environments=list(Environment.objects.order_by("name").values_list("name", flat=True)),
            **_page(self.request, deployments),
        )
        return context

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        status = 400 if context["invalid"] else 200
        return super().render_to_response(context, status=status, **kwargs)


class ReviewBadgeView(LoginRequiredMixin, View):
    """The navigation's badge: how many requests wait for review (an htmx fragment, so the
    pages themselves run no extra query)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        count = review_queue_count(_reader(request))
        return render(request, "deployments/_review_badge.html", {"count": count})


class SearchView(LoginRequiredMixin, View):
    """The search box's results page (the API: `GET /api/v1/search/?q=`)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        raw = request.GET.get("q", "")
        context: dict[str, Any] = {"query": raw.strip()[:200]}
        status = 200
        if raw.strip():
            try:
                query = search_normalise(raw)
            except SearchQueryError as exc:
                context["error"] = str(exc)
                status = 400
            else:
                context["results"] = search_for_actor(query=query, actor=_reader(request))
        return render(request, "deployments/search.html", context, status=status)
