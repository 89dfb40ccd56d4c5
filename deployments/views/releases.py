"""Release pages: one release, rollback and the diff between two releases."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext
from django.views import View
from django.views.generic import TemplateView
from rest_framework.exceptions import APIException

from portal.actors import Actor

from ..models import Release
from ..selectors import (
    deployment_list_for_actor,
    release_diff,
    release_list_for_actor,
    team_readable,
)
from ..services import (
    release_rollback,
)
from ._common import _error_text, _reader


class ReleaseDetailView(LoginRequiredMixin, TemplateView):
    """One release: its tuple, validation result, manifest and Dockerfile."""

    template_name = "deployments/release_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        releases = release_list_for_actor(_reader(self.request)).defer(None)
        context["release"] = get_object_or_404(releases, pk=kwargs["pk"])
        return context


class ReleaseRollbackView(LoginRequiredMixin, View):
    """Roll back: a new release with an older release's binary and runtime versions."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        readable = team_readable(_reader(request), "deployment__service__team")
        releases = Release.objects.select_related("deployment").filter(readable)
        old = get_object_or_404(releases, pk=pk)
        try:
            release = release_rollback(actor=Actor(user=request.user), release=old)
        except (ValidationError, APIException) as exc:
            messages.error(
                request,
                gettext("Rollback to #%(number)s refused: %(error)s")
                % {"number": old.number, "error": _error_text(exc)},
            )
            return redirect("deployments:deployment-detail", pk=old.deployment_id)
        messages.success(
            request,
            gettext("Release #%(number)s rolls back to #%(old)s.")
            % {"number": release.number, "old": old.number},
        )
        return redirect("deployments:release-detail", pk=release.pk)


RECENT_RELEASES = 25  # offered in the diff form's pickers; any other number can be typed


class ReleaseDiffView(LoginRequiredMixin, TemplateView):
    """A unified diff between two releases of a deployment (?a=<number>&b=<number>)."""

    template_name = "deployments/release_diff.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        deployments = deployment_list_for_actor(_reader(self.request))
        deployment = get_object_or_404(deployments, pk=kwargs["pk"])
        error = ""
        diff = ""
        try:
            a, b = int(self.request.GET.get("a", "")), int(self.request.GET.get("b", ""))
        except ValueError:
            a = b = 0
            error = "Choose two releases to compare."
        # Only the two compared releases' manifests, not every release of the deployment.
        releases = (
            {r.number: r for r in Release.objects.filter(deployment=deployment, number__in=[a, b])}
            if not error
            else {}
        )
        if not error:
            if a not in releases or b not in releases:
                error = f"{deployment} has no release #{a if a not in releases else b}."
            else:
                diff = release_diff(releases[a], releases[b]) or ""
        context.update(
            deployment=deployment,
            recent=list(
                Release.objects.filter(deployment=deployment)
                .order_by("-number")
                .values_list("number", flat=True)[:RECENT_RELEASES]
            ),
            a=a,
            b=b,
            diff_lines=diff.splitlines(),
            error=error,
            identical=not error and not diff,
        )
        return context
