"""Deployment pages: deploying a service to an environment and a deployment's page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext
from django.views import View
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.choices import Role, role_at_least
from portal.keyset import KeysetPage, keyset_page
from portal.rowtext import clip, csrf_input, date_formatter, html, url_filler
from portal.selectors import role_holders
from portal.sql_hints import joins_as_written
from portal.templatetags.portal_i18n import status_badge

from ..forms import (
    DeploymentCreateForm,
    ReleaseCreateForm,
    approved_runtime_versions,
)
from ..models import Deployment, Environment, actor_label
from ..selectors import (
    deployment_list_for_actor,
    deployment_page_get,
    release_history,
)
from ..services import (
    deployment_create,
    release_create,
)
from ._common import _reader, _service_or_404, _show_errors

# What the page's plans table shows of each item (the plan's own texts stay unread).
PLAN_ITEM_COLUMNS = (
    "plan_id",
    "deployment_id",
    "verdict",
    "state",
    "plan__kind",
    "plan__state",
    "target_version__tag",
    "target_version__base_image__name",
)
RELEASE_ORDER = ("-number",)  # within one deployment, unique (release_unique_deployment_number)
RELEASE_PAGE_SIZE = 25


class DeploymentCreateView(LoginRequiredMixin, View):
    """Put a service into an environment (developers of the service's team)."""

    template_name = "deployments/deployment_form.html"

    def _service(self, request: HttpRequest, name: str) -> Any:
        service = _service_or_404(name)
        role = Actor(user=request.user).role_in(service.team)
        if role is None or not role_at_least(role, Role.DEVELOPER):
            message = gettext("Only developers of team %(team)s (or above) deploy %(service)s.") % {
                "team": service.team.name,
                "service": service.name,
            }
            holders = role_holders(minimum=Role.DEVELOPER, team=service.team)
            if holders:
                ask = gettext("Ask one of them: %(names)s.") % {"names": ", ".join(holders)}
                message = pgettext("two sentences", "%(first)s %(second)s") % {
                    "first": message,
                    "second": ask,
                }
            raise PermissionDenied(message)
        return service

    def _render(
        self, request: HttpRequest, service: Any, form: DeploymentCreateForm, status: int = 200
    ) -> HttpResponse:
        context = {
            "service": service,
            "form": form,
            "no_environments": not Environment.objects.exists(),
            "no_runtimes": not approved_runtime_versions().exists(),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        service = self._service(request, name)
        return self._render(request, service, DeploymentCreateForm(service=service))

    def post(self, request: HttpRequest, name: str) -> HttpResponse:
        service = self._service(request, name)
        form = DeploymentCreateForm(request.POST, service=service)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                deployment = deployment_create(
                    actor=Actor(user=request.user),
                    service=service,
                    environment=data["environment"],
                    runtime_version=data["runtime_version"],
                    binary_version=data["binary_version"],
                    mode=data["mode"],
                    args=data["args"],
                    env=data["env"],
                    ports=data["ports"],
                    resources=form.resources(),
                    replicas=data["replicas"],
                )
            except (ValidationError, APIException) as exc:
                status = _show_errors(form, exc)
            else:
                messages.success(
                    request,
                    gettext("%(service)s is deployed in %(environment)s: create its first release.")
                    % {"service": service.name, "environment": deployment.environment.name},
                )
                return redirect("deployments:deployment-detail", pk=deployment.pk)
        return self._render(request, service, form, status=status)


HISTORY_ROW = """<tr>
      <td><a href="{}">#{}</a>{}{}</td>
      <td>{} <code title="{}">{}</code>{}</td>
      <td><code title="{}">{}</code></td>
      <td><code>{}</code></td>
      <td>{}</td>
      <td>{}</td>
      <td>{}</td>
    </tr>"""
ROLLBACK_FORM = (
    '<form method="post" action="{}" class="inline">{}<button type="submit" '
    'class="secondary outline small" data-confirm="{}">{}</button></form>'
)


def _history_rows(
    request: HttpRequest, page: KeysetPage, deployment: Deployment
) -> list[SafeString]:
    detail = url_filler("deployments:release-detail", "pk")
    rollback = url_filler("deployments:release-rollback", "pk")
    when = date_formatter("SHORT_DATETIME_FORMAT")
    csrf = csrf_input(request)
    live_note = html(" <small>{}</small>", gettext("(live)"))
    rollback_note = gettext("rollback to #%(number)s")
    label = gettext("Roll back to #%(number)s")
    confirm = gettext(
        "Roll back to release #%(n)s? A new release is created from #%(n)s's images and "
        "binaries, and the environment's manifests change to it."
    )
    latest = getattr(deployment, "latest_release", None)  # deployment_list's annotation
    rows = []
    for release in page.object_list:  # release_history's rows
        number = release["number"]
        live = number == latest
        created_by = actor_label(
            release["created_by_token__name"], release["created_by__username"], nobody="system"
        )  # as Release.created_by_repr
        line = html(
            HISTORY_ROW,
            detail(release["id"]),
            number,
            live_note if live else "",
            html(
                "<br><small>{}</small>", rollback_note % {"number": release["rollback_of__number"]}
            )
            if release["rollback_of__number"] is not None
            else "",
            release["binary_version__version"],
            release["binary_sha256"],
            clip(release["binary_sha256"], 13),
            ""
            if release["binary_version__state"] == "active"
            else html(" {}", status_badge(release["binary_version__state"])),
            release["base_digest"],
            clip(release["base_digest"], 20),
            clip(release["manifest_sha256"], 13) or "—",
            created_by,
            when(release["created_at"]),
            ""
            if live
            else html(
                ROLLBACK_FORM,
                rollback(release["id"]),
                csrf,
                confirm % {"n": number},
                label % {"number": number},
            ),
        )
        rows.append(line)
    return rows


class DeploymentDetailView(LoginRequiredMixin, View):
    """A deployment: current tuple, release history, new release, rollback, diff."""

    template_name = "deployments/deployment_detail.html"

    def _deployment(self, request: HttpRequest, pk: int, *, shown: bool = False) -> Deployment:
        """The deployment `pk`: 404 for one of another team's services, as for none. `shown`:
        only what the page shows (a release is created from the whole deployment)."""
        with joins_as_written():  # by primary key (portal.sql_hints)
            if not shown:
                return get_object_or_404(deployment_list_for_actor(_reader(request)), pk=pk)
            deployment = deployment_page_get(pk, _reader(request))
        if deployment is None:
            raise Http404("No Deployment matches the given query.")  # get_object_or_404's
        return deployment

    def _render(
        self,
        request: HttpRequest,
        deployment: Deployment,
        form: ReleaseCreateForm,
        status: int = 200,
    ) -> HttpResponse:
        # The history a keyset page at a time: a busy deployment has thousands of releases.
        # Its own rows by an index of their own: 10 tables planned for 11 ms, 1.8 as written.
        with joins_as_written():
            releases = keyset_page(
                request,
                release_history(deployment),
                RELEASE_ORDER,
                size=RELEASE_PAGE_SIZE,
            )
        role = Actor(user=request.user).role_in(deployment.service.team)
        can_release = role is not None and role_at_least(role, Role.DEVELOPER)
        context = {
            "deployment": deployment,
            "releases": _history_rows(request, releases, deployment),
            # The diff form's datalist: this page's release numbers.
            "recent_numbers": SafeString(
                "".join(html('<option value="{}"></option>', r["number"]) for r in releases)
            ),
            "page": releases,
            "form": form,
            "can_release": can_release,
            # Asked only where the page says there is none to release.
            "has_binaries": can_release
            and deployment.binary_version_id is None
            and deployment.service.binary_versions.filter(state="active").exists(),
            # The plans that move it (issue 10), newest first: its team sees its own items.
            "plan_items": list(
                deployment.plan_items.select_related("plan", "target_version__base_image")
                .only(*PLAN_ITEM_COLUMNS)
                .order_by("-plan__created_at", "-plan_id")[:10]
            )
            if getattr(deployment, "in_plans", True)  # deployment_page_get's
            else [],
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        deployment = self._deployment(request, pk, shown=True)
        return self._render(request, deployment, ReleaseCreateForm(deployment=deployment))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        deployment = self._deployment(request, pk)
        form = ReleaseCreateForm(request.POST, deployment=deployment)
        if not form.is_valid():
            return self._render(request, deployment, form, status=400)
        try:
            release = release_create(
                actor=Actor(user=request.user),
                deployment=deployment,
                binary_version=form.cleaned_data["binary_version"],
                runtime_version=form.cleaned_data["runtime_version"],
            )
        except (ValidationError, APIException) as exc:
            status = _show_errors(form, exc)
            return self._render(request, deployment, form, status=status)
        messages.success(
            request,
            gettext("Release #%(number)s created and validated.") % {"number": release.number},
        )
        return redirect("deployments:release-detail", pk=release.pk)
