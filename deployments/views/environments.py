"""Environment pages: the list, the create form, and an environment's page with its fetch token."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views import View
from django.views.generic import TemplateView
from rest_framework.exceptions import APIException

from portal.actors import Actor

from ..forms import (
    EnvironmentCreateForm,
)
from ..models import Environment
from ..selectors import (
    deployment_list_for_actor,
    environment_list,
)
from ..services import (
    environment_create,
    environment_fetch_token_create,
)
from ._common import _error_text, _reader, _show_errors


class EnvironmentListView(LoginRequiredMixin, TemplateView):
    """Environments with their Kubernetes version and delivery strategy."""

    template_name = "deployments/environment_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["environments"] = environment_list()
        context["can_create"] = Actor(user=self.request.user).is_platform_admin
        return context


class EnvironmentCreateView(LoginRequiredMixin, View):
    """Add an environment (platform admins)."""

    template_name = "deployments/environment_form.html"

    def _check(self, request: HttpRequest) -> Actor:
        actor = Actor(user=request.user)
        if not actor.is_platform_admin:
            raise PermissionDenied(gettext_lazy("Only platform admins create environments."))
        return actor

    def get(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        return render(request, self.template_name, {"form": EnvironmentCreateForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        actor = self._check(request)
        form = EnvironmentCreateForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                environment = environment_create(actor=actor, **form.cleaned_data)
            except (ValidationError, APIException) as exc:
                status = _show_errors(form, exc)
            else:
                messages.success(
                    request,
                    gettext("Environment %(name)s created. Create its fetch token next.")
                    % {"name": environment.name},
                )
                return redirect("deployments:environment-detail", name=environment.name)
        return render(request, self.template_name, {"form": form}, status=status)


class EnvironmentDetailView(LoginRequiredMixin, View):
    """An environment: its deployments, sync DaemonSet and fetch-token instructions.

    POST (platform admins) creates a new fetch token and shows its secret once, inside the
    `kubectl create secret` command, and says which previous token the rotation revoked.
    """

    template_name = "deployments/environment_detail.html"

    def _render(
        self, request: HttpRequest, name: str, extra: dict[str, Any], status: int = 200
    ) -> HttpResponse:
        environment = get_object_or_404(environment_list(), name=name)
        actor = _reader(request)
        context = {
            "environment": environment,
            "deployments": deployment_list_for_actor(actor).filter(environment=environment),
            "is_platform_admin": actor.is_platform_admin,
            **extra,
        }
        response = render(request, self.template_name, context, status=status)
        if "fetch" in extra:
            response["Cache-Control"] = "no-store"
        return response

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        return self._render(request, name, {})

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        environment = get_object_or_404(Environment, name=name)
        try:
            fetch = environment_fetch_token_create(
                environment=environment, actor=Actor(user=request.user)
            )
        except (ValidationError, APIException) as exc:
            status = getattr(exc, "status_code", 400)
            return self._render(request, name, {"fetch_error": _error_text(exc)}, status=status)
        return self._render(request, name, {"fetch": fetch})
