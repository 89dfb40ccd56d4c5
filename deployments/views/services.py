"""Service pages: the list, the create form and a service's page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views import View
from django.views.generic import TemplateView
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.choices import Role, role_at_least
from portal.models import Team
from portal.rowtext import date_formatter, url_filler

from ..choices import DeploymentMode, Language
from ..filtersets import BinaryVersionFilterSet, ServiceFilterSet
from ..forms import (
    ServiceCreateForm,
)
from ..models import Service
from ..selectors import (
    binary_version_list,
    deployment_list_for_actor,
    service_list_for_actor,
)
from ..selectors.compat import binary_runtime_checks
from ..services import (
    service_create,
)
from ._common import _keyset, _page, _reader, _service_or_404, _show_errors, _teams_at_least


@dataclass(frozen=True)
class ServiceRow:
    """A line of the services list, as the page shows it (`portal.rowtext`)."""

    service: Service
    detail_url: str
    language: str
    default_mode: str
    last_upload: str


def _service_rows(services: Any) -> list[ServiceRow]:
    detail = url_filler("deployments:service-detail", "name")
    when = date_formatter("SHORT_DATETIME_FORMAT")
    languages = {value: str(label) for value, label in Language.choices}
    modes = {value: str(label) for value, label in DeploymentMode.choices}
    return [
        ServiceRow(
            service=service,
            detail_url=detail(service.name),
            language=languages.get(service.language, service.language),
            default_mode=modes.get(service.default_mode, service.default_mode),
            last_upload=when(service.last_upload) or "—",
        )
        for service in services
    ]


class ServiceListView(LoginRequiredMixin, TemplateView):
    """Every service with its team, version count and last upload."""

    template_name = "deployments/service_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        readable = service_list_for_actor(_reader(self.request))
        filterset = ServiceFilterSet(self.request.GET or None, queryset=readable)
        services = filterset.qs if filterset.is_bound and filterset.is_valid() else readable
        context.update(
            filterset=filterset,
            filtered=any(v for k, v in self.request.GET.items() if k not in {"page", "page_size"}),
            **_page(self.request, services),
        )
        context["rows"] = _service_rows(context["page"].object_list)
        return context


class ServiceCreateView(LoginRequiredMixin, View):
    """Register a service of one of the user's teams (maintainers and above)."""

    template_name = "deployments/service_form.html"

    def _teams(self, request: HttpRequest) -> list[Team]:
        teams = _teams_at_least(Actor(user=request.user), Role.MAINTAINER)
        if not teams:
            raise PermissionDenied(
                gettext("Only team maintainers register services; ask a maintainer of your team.")
            )
        return teams

    def get(self, request: HttpRequest) -> HttpResponse:
        form = ServiceCreateForm(teams=self._teams(request))
        return render(request, self.template_name, {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ServiceCreateForm(request.POST, teams=self._teams(request))
        status = 400
        if form.is_valid():
            try:
                service = service_create(actor=Actor(user=request.user), **form.cleaned_data)
            except (ValidationError, APIException) as exc:
                status = _show_errors(form, exc)
            else:
                messages.success(
                    request, gettext("Service %(name)s registered.") % {"name": service.name}
                )
                return redirect("deployments:service-detail", name=service.name)
        return render(request, self.template_name, {"form": form}, status=status)


class ServiceDetailView(LoginRequiredMixin, TemplateView):
    """A service: its binary versions (filterable, paginated) and its deployments."""

    template_name = "deployments/service_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        actor = _reader(self.request)
        service = _service_or_404(kwargs["name"], actor)
        versions = binary_version_list(service)
        filterset = BinaryVersionFilterSet(self.request.GET or None, queryset=versions)
        if filterset.is_bound and filterset.is_valid():
            versions = filterset.qs
        role = actor.role_in(service.team)
        context.update(
            service=service,
            filterset=filterset,
            errors=filterset.errors if filterset.is_bound else {},
            filtered=any(
                v for k, v in self.request.GET.items() if k not in {"page", "page_size", "cursor"}
            ),
            deployments=deployment_list_for_actor(actor).filter(service=service),
            can_upload=role is not None and role_at_least(role, Role.DEVELOPER),
            can_deploy=role is not None and role_at_least(role, Role.DEVELOPER),
            **_keyset(self.request, versions, ("-created_at", "-id")),
        )
        # The newest binary built in a known build image, checked against where it runs.
        built = (
            service.binary_versions.filter(built_in__isnull=False)
            .select_related("service", "built_in__base_image")
            .first()
        )
        context["built_binary"] = built
        context["policy_exceptions"] = service.policy_exceptions.filter(
            expires_at__gt=timezone.now()
        ).select_related("approved_by")
        context["may_grant_exceptions"] = actor.is_platform_admin
        context["built_checks"] = binary_runtime_checks(built) if built is not None else []
        return context
