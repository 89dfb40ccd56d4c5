"""Service pages: the list, the create form and a service's page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.views import View
from django.views.generic import TemplateView
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.choices import Role, role_at_least
from portal.models import Team
from portal.querysets import page_values
from portal.rowtext import clip, csrf_input, date_formatter, html, url_filler
from portal.templatetags.portal_i18n import status_badge

from ..choices import DeploymentMode, FileType, Language
from ..filtersets import BinaryVersionFilterSet, ServiceFilterSet
from ..forms import (
    ServiceCreateForm,
)
from ..models import BinaryVersion, actor_label
from ..selectors import (
    service_binary_versions,
    service_deployments,
    service_list_for_actor,
    service_page_get,
)
from ..selectors.compat import binary_runtime_checks
from ..services import (
    service_create,
)
from ._common import _keyset, _page, _reader, _service_or_404, _show_errors, _teams_at_least

# What the services table shows, as `values()` rows of `service_list`'s columns and counts.
SERVICE_COLUMNS = (
    "name",
    "team__name",
    "language",
    "default_mode",
    "version_count",
    "deployment_count",
    "last_upload",
)
SERVICE_ROW = """<tr>
      <td><a href="{}">{}</a></td>
      <td>{}</td>
      <td>{}</td>
      <td>{}</td>
      <td>{}</td>
      <td>{}</td>
      <td>{}</td>
    </tr>"""


def _service_rows(services: Iterable[dict[str, Any]]) -> list[SafeString]:
    """The services table's lines, written here (`portal.rowtext`)."""
    detail = url_filler("deployments:service-detail", "name")
    when = date_formatter("SHORT_DATETIME_FORMAT")
    languages = {value: str(label) for value, label in Language.choices}
    modes = {value: str(label) for value, label in DeploymentMode.choices}
    return [
        html(
            SERVICE_ROW,
            detail(service["name"]),
            service["name"],
            service["team__name"],
            languages.get(service["language"], service["language"]),
            modes.get(service["default_mode"], service["default_mode"]),
            service["version_count"],
            service["deployment_count"],
            when(service["last_upload"]) or "—",
        )
        for service in services
    ]


DEPLOYMENT_ROW = """<tr>
      <td><a href="{}">{}</a></td>
      <td>{}</td>
      <td>{}</td>
      <td><code>{}:{}</code></td>
      <td>{}</td>
    </tr>"""


def _deployment_rows(deployments: list[dict[str, Any]]) -> list[SafeString]:
    """A service's deployments table (`service_deployments`' rows), written here."""
    detail = url_filler("deployments:deployment-detail", "pk")
    modes = {value: str(label) for value, label in DeploymentMode.choices}
    none_yet = gettext("none yet")
    rows = []
    for d in deployments:
        latest = d["latest_release"]
        rows.append(
            html(
                DEPLOYMENT_ROW,
                detail(d["id"]),
                d["environment__name"],
                modes.get(d["mode"], d["mode"]),
                d["binary_version__version"] or "—",
                d["runtime_version__base_image__name"],
                d["runtime_version__tag"],
                f"#{latest}" if latest else none_yet,
            )
        )
    return rows


BINARY_ROW = """<tr>
      <td>{}{}</td>
      <td>{}</td>
      <td>{}</td>
      <td><code title="{}">{}</code></td>
      <td>{}</td>
      <td>{}</td>
      <td>{}<br><small>{}</small></td>
      <td>{}</td>
      <td>{}</td>
      <td>{}{}</td>
    </tr>"""
ARTIFACT_FORM = (
    '<form method="post" action="{}" class="inline" title="{}">{}<button type="submit" '
    'class="secondary outline small">{}</button></form> '
)
YANK_FORM = (
    '<form method="post" action="{}" class="inline">{}<button type="submit" '
    'class="secondary outline small" data-confirm="{}">{}</button></form>'
)


def _binary_rows(
    request: HttpRequest,
    versions: list[dict[str, Any]],
    runs: dict[int, list[dict[str, Any]]],
    *,
    can_upload: bool,
) -> list[SafeString]:
    """A service's binary-version table, written here (`portal.rowtext`): ten cells, the
    environments that run each (`runs`, by binary version id) and two forms a row."""
    deployment = url_filler("deployments:deployment-detail", "pk")
    artifact = url_filler("deployments:binary-artifact", "pk")
    yank = url_filler("deployments:binary-yank", "pk")
    when = date_formatter("SHORT_DATETIME_FORMAT")
    csrf = csrf_input(request)
    file_types = {value: str(label) for value, label in FileType.choices}
    artifact_label = gettext("OCI artifact")
    artifact_title = gettext(
        "Push the binary to the registry as an OCI image, for environments that mount "
        "binaries as image volumes"
    )
    artifact_button = gettext("Push as OCI artifact")
    yank_label = gettext("Yank")
    yank_confirm = gettext(
        "Yank binary version %(v)s? New releases can no longer use it and nodes stop "
        "downloading it; releases that already run it keep their copy until they move."
    )
    rows = []
    for bv in versions:  # service_binary_versions' rows
        pk, version, artifact_ref = bv["id"], bv["version"], bv["artifact_ref"]
        if bv["file_type"] == "elf":
            needed = bv["needed"]
            linkage = html(
                "{}{}",
                bv["linkage"],
                html("<br><small>{}</small>", ", ".join(needed)) if needed else "",
            )
        else:
            linkage = html("{}", file_types.get(bv["file_type"], bv["file_type"]))
        uploader = actor_label(
            bv["uploaded_by_token__name"], bv["uploaded_by__username"], nobody="—"
        )  # as BinaryVersion.uploader
        links = [
            html('<a href="{}">{}</a>', deployment(d["id"]), d["environment__name"])
            for d in runs.get(pk, ())
        ]
        actions = ""
        if can_upload and bv["state"] == "active":
            actions = html(
                "{}{}",
                ""
                if artifact_ref
                else html(ARTIFACT_FORM, artifact(pk), artifact_title, csrf, artifact_button),
                html(YANK_FORM, yank(pk), csrf, yank_confirm % {"v": version}, yank_label),
            )
        rows.append(
            html(
                BINARY_ROW,
                version,
                html("<br><small>{}</small>", clip(bv["commit"], 12)) if bv["commit"] else "",
                bv["arch"],
                filesizeformat(bv["size"]),
                bv["sha256"],
                bv["sha256"][:12],
                linkage,
                bv["min_glibc"] or "—",
                uploader,
                when(bv["created_at"]),
                SafeString(", ".join(links)) if links else "—",
                status_badge(bv["state"]),
                html(
                    '<small class="artifact-ref">{} <code title="{}">{}</code></small><br>',
                    artifact_label,
                    artifact_ref,
                    clip(artifact_ref, 48),
                )
                if artifact_ref
                else "",
                actions,
            )
        )
    return rows


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
        context["rows"] = _service_rows(page_values(context["page"], *SERVICE_COLUMNS))
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
        service = _service_or_404(kwargs["name"], actor, lookup=service_page_get)
        versions = service_binary_versions(service)
        filterset = BinaryVersionFilterSet(self.request.GET or None, queryset=versions)
        if filterset.is_bound and filterset.is_valid():
            versions = filterset.qs
        role = actor.role_in(service.team)
        deployments = service_deployments(service)
        context.update(
            service=service,
            filterset=filterset,
            errors=filterset.errors if filterset.is_bound else {},
            filtered=any(
                v for k, v in self.request.GET.items() if k not in {"page", "page_size", "cursor"}
            ),
            deployments=_deployment_rows(deployments),
            can_upload=role is not None and role_at_least(role, Role.DEVELOPER),
            can_deploy=role is not None and role_at_least(role, Role.DEVELOPER),
            **_keyset(self.request, versions, ("-created_at", "-id")),
        )
        # The newest binary built in a known build image, checked against where it runs.
        # Most services have neither (service_page_get's annotations say): no query then.
        built = (
            BinaryVersion.objects.select_related("built_in__base_image").get(
                pk=service.built_binary_id
            )
            if service.built_binary_id is not None
            else None
        )
        context["built_binary"] = built
        context["policy_exceptions"] = (
            service.policy_exceptions.filter(expires_at__gt=timezone.now()).select_related(
                "approved_by"
            )
            if service.has_open_exceptions
            else []
        )
        context["may_grant_exceptions"] = actor.is_platform_admin
        context["built_checks"] = binary_runtime_checks(built) if built is not None else []
        runs: dict[int, list[dict[str, Any]]] = {}
        for deployment in deployments:
            runs.setdefault(deployment["binary_version"] or 0, []).append(deployment)
        context["rows"] = _binary_rows(
            self.request, context["page"].object_list, runs, can_upload=context["can_upload"]
        )
        return context
