"""UI views of the images app: the catalog, the Dockerfile check and image requests.

Each view parses input and calls the same service as the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy, pgettext
from django.views import View
from django.views.generic import DetailView, FormView, TemplateView
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.jobs import IllegalTransition
from portal.querysets import page_values
from portal.rowtext import date_formatter, html, url_filler
from portal.templatetags.portal_i18n import status_badge

from ..choices import ImageKind, ImageStatus, OsFamily, RequestState
from ..filtersets import BaseImageFilterSet, ImageRequestFilterSet
from ..forms import DockerfileCheckForm, ImageRequestForm
from ..models import BaseImage, ImageRequest
from ..policy import DockerfileInputError, Finding
from ..policy.config import SEVERITIES
from ..scan_selectors import base_image_findings_history
from ..selectors import (
    base_image_detail,
    base_image_list,
    compatibility_matrix,
    image_request_allowed_actions,
    image_request_list_for_actor,
    image_request_review_queue,
    image_version_current,
)
from ..services import (
    dockerfile_check,
    image_request_approve,
    image_request_comment,
    image_request_create,
    image_request_reject,
    image_request_request_changes,
    image_request_submit,
    image_request_update,
    image_version_gate,
    image_version_publish,
)
from ..snippets import render_from_line, render_volume_pod
from ..templatetags.catalog_notes import scan_summary, status_note

PAGE_SIZES = (10, 25, 50, 100)


CATALOG_ROW = """<tr>
      <td><a href="{}">{}</a>
        {}</td>
      <td>{}</td>
      <td>{} {}</td>
      <td>{}</td>
      <td>{}</td>
      <td>{}</td>
      <td>{}</td>
      <td class="scan-cell">{}</td>
    </tr>"""


# What the table shows of each entry: `base_image_list`'s columns and annotations as
# `values()` rows (ten entries as models with their relations took 3.5 ms to build).
CATALOG_COLUMNS = (
    "id",
    "name",
    "kind",
    "os_family",
    "os_version",
    "toolchain",
    "status",
    "status_note",
    "eol_date",
    "replacement_id",
    "replacement__name",
    "version_count",
    "current_scan_state",
    "current_scan_summary",
)


def _eol_past(status: str, eol: dt.date | None, today: dt.date) -> bool:
    """Whether an image's end of life is shown red: deprecated, or past its end of life
    whatever its status still says (the catalog's EOL cell, the image page's badge)."""
    return status == ImageStatus.DEPRECATED or (eol is not None and eol < today)


def _catalog_rows(images: Iterable[dict[str, Any]]) -> list[SafeString]:
    """The catalog table's lines, written here (`portal.rowtext`): the detail URL reversed
    once a page, the choice labels translated once, the scan cell a function, not an
    include per row."""
    detail = url_filler("images:base-image-detail", "pk")
    when = date_formatter("SHORT_DATE_FORMAT")
    today = timezone.localdate()
    use = gettext("→ use")
    kinds = {value: str(label) for value, label in ImageKind.choices}
    families = {value: str(label) for value, label in OsFamily.choices}
    rows = []
    for image in images:  # CATALOG_COLUMNS rows
        pk, status, eol = image["id"], image["status"], image["eol_date"]
        replaced_by = image["replacement_id"]
        rows.append(
            html(
                CATALOG_ROW,
                detail(pk),
                image["name"],
                html(
                    '<br><small>{} <a href="{}">{}</a></small>',
                    use,
                    detail(replaced_by),
                    image["replacement__name"],
                )
                if replaced_by is not None
                else "",
                kinds.get(image["kind"], image["kind"]),
                families.get(image["os_family"], image["os_family"]),
                image["os_version"],
                image["toolchain"] or "—",
                status_badge(status, status_note(image["status_note"])),
                html(
                    '<span class="{}">{}</span>',
                    "eol-past" if _eol_past(status, eol, today) else "",
                    when(eol),
                )
                if eol
                else "—",
                image["version_count"],
                scan_summary(image["current_scan_state"], image["current_scan_summary"])
                if image["current_scan_state"]
                else "—",
            )
        )
    return rows


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
            rows=_catalog_rows(page_values(page, *CATALOG_COLUMNS)),
            query=query.urlencode(),
            filtered=any(v for k, v in self.request.GET.items() if k not in {"page", "page_size"}),
            page_size=page_size,
            page_sizes=PAGE_SIZES,
            errors=filterset.errors if filterset.is_bound else {},
        )
        return context


VERSION_ROW = (
    '<tr><td><a href="{}">{}</a></td><td><code title="{}">{}…</code></td><td>{}</td>'
    '<td>{}</td><td>{}{}</td><td class="scan-cell">{}</td><td>{}</td></tr>'
)
PLAN_LINK = ' <a href="{}?from_version={}" class="plan-rebase"><small>{}</small></a>'


def _version_rows(image: BaseImage, versions: list[Any], *, may_plan: bool) -> list[SafeString]:
    """A base image's versions table, written here (`portal.rowtext`): a busy image has
    dozens of versions and each row took the page eleven template tags."""
    detail = url_filler("images:image-version-detail", "pk")
    when = date_formatter("SHORT_DATETIME_FORMAT")
    # A superseded runtime version offers the platform team a rebase plan (issue 10).
    plan_url = (
        reverse("deployments:rebase-plan-create")
        if may_plan and image.kind == ImageKind.RUNTIME
        else ""
    )
    plan_label = gettext("Plan a rebase")
    return [
        html(
            VERSION_ROW,
            detail(v.pk),
            ", ".join(v.tags) or v.tag,
            v.digest,
            v.digest[:19],
            v.arch or "—",
            filesizeformat(v.size),
            status_badge(v.state),
            html(PLAN_LINK, plan_url, v.pk, plan_label)
            if plan_url and v.state == "superseded"
            else "",
            scan_summary(v.scan_state, v.scan_summary, v.scan_error),
            when(v.created_at),
        )
        for v in versions
    ]


def _replacement_options(image: BaseImage) -> SafeString:
    """The curation form's replacements: the other approved entries of the image's kind."""
    families = {value: str(label) for value, label in OsFamily.choices}
    return SafeString(
        "".join(
            html('<option value="{}">{} ({} {})</option>', pk, name, families.get(os, os), version)
            for pk, name, os, version in BaseImage.objects.filter(
                kind=image.kind, status=ImageStatus.APPROVED
            )
            .exclude(pk=image.pk)
            .order_by("name")
            .values_list("pk", "name", "os_family", "os_version")
        )
    )


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
        context["eol_past"] = _eol_past(image.status, image.eol_date, timezone.localdate())
        context["versions"] = list(image.versions.all())
        history = base_image_findings_history(image)
        context["findings_history"] = {**history, "any": any(map(any, history["series"].values()))}
        context["scanned_any"] = any(v.sbom_id for v in context["versions"])
        # The build/runtime pair rule, from this image's side (issue 10).
        is_build = image.kind == ImageKind.BUILD
        context["compat_pairs"] = compatibility_matrix(
            build=image.name if is_build else "", runtime="" if is_build else image.name
        )
        is_platform_admin = Actor(user=self.request.user).is_platform_admin
        context["version_rows"] = _version_rows(
            image, context["versions"], may_plan=is_platform_admin
        )
        if is_platform_admin:
            context["curation"] = {
                "statuses": ImageStatus.choices,
                "replacement_options": _replacement_options(image),
            }
        if current is not None:
            context["from_line"] = render_from_line(current.pull_ref)
            context["pod_yaml"] = render_volume_pod(pull_ref=current.pull_ref, name="my-service")
        return context


# --- Check Dockerfile ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerfileLine:
    """One line of the checked Dockerfile with the findings reported on it."""

    number: int
    text: str
    findings: tuple[Finding, ...]
    worst: str


def dockerfile_lines(text: str, findings: tuple[Finding, ...]) -> list[DockerfileLine]:
    """Number the lines and attach each finding to its line (past the end: the last line)."""
    rows = text.split("\n")
    if rows and rows[-1] == "" and len(rows) > 1:
        rows.pop()
    by_line: dict[int, list[Finding]] = {}
    for finding in findings:
        by_line.setdefault(min(max(finding.line, 1), len(rows)), []).append(finding)
    order = {"fail": 0, "warn": 1, "info": 2}
    lines = []
    for number, row in enumerate(rows, start=1):
        hits = tuple(by_line.get(number, ()))
        worst = min((f.severity for f in hits), key=lambda s: order.get(s, 3), default="")
        lines.append(DockerfileLine(number, row, hits, worst))
    return lines


class DockerfileCheckView(LoginRequiredMixin, FormView):
    """Check a Dockerfile against the standard: verdict, findings against lines, stages."""

    template_name = "images/dockerfilecheck_form.html"
    form_class = DockerfileCheckForm

    def form_valid(self, form: DockerfileCheckForm) -> HttpResponse:
        data = form.cleaned_data
        try:
            check = dockerfile_check(
                text=data["text"],
                service_name=data.get("service") or None,
                purpose=data["purpose"],
            )
        except DockerfileInputError as exc:
            form.add_error(None, exc.message)
            return self.form_invalid(form)
        result = check.localized()
        counts = {s: sum(f.severity == s for f in result.findings) for s in SEVERITIES}
        return self.render_to_response(
            self.get_context_data(
                form=form,
                check=check,
                result=result,
                counts=counts,
                lines=dockerfile_lines(check.text, result.findings),
            )
        )


# --- Image requests ---------------------------------------------------------------------------


EDIT_FIELDS = ("tag", "os_version", "toolchain", "recipe_kind", "recipe", "justification")


def _apply_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class ImageRequestListView(LoginRequiredMixin, View):
    """My (and my teams') requests; `?queue=review` is the review queue for platform admins."""

    def get(self, request: HttpRequest) -> HttpResponse:
        actor = Actor(user=request.user)
        review = request.GET.get("queue") == "review"
        if review and not actor.is_platform_admin:
            raise PermissionDenied(gettext_lazy("The review queue is for platform admins."))
        if review:
            requests = image_request_review_queue()
            filterset = None
        else:
            requests = image_request_list_for_actor(actor)
            filterset = ImageRequestFilterSet(request.GET or None, queryset=requests)
            if filterset.is_bound and filterset.is_valid():
                requests = filterset.qs
        page = Paginator(requests, 25).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        return render(
            request,
            "images/imagerequest_list.html",
            {
                "page": page,
                "query": query.urlencode(),
                "review": review,
                "filterset": filterset,
                "states": RequestState.choices,
                "queue_count": image_request_review_queue().count()
                if actor.is_platform_admin
                else 0,
            },
        )


class ImageRequestCreateView(LoginRequiredMixin, View):
    """The request form; "Save draft" or "Submit for review"."""

    def get(self, request: HttpRequest) -> HttpResponse:
        initial = {k: v for k, v in request.GET.items() if k in ImageRequestForm.base_fields}
        form = ImageRequestForm(initial={"os_family": "debian", "os_version": "12", **initial})
        return render(request, "images/imagerequest_form.html", {"form": form, "creating": True})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ImageRequestForm(request.POST)
        if form.is_valid():
            try:
                created = image_request_create(
                    actor=Actor(user=request.user),
                    submit=request.POST.get("submit") == "1",
                    **form.cleaned_data,
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            except APIException as exc:
                form.add_error(None, str(exc.detail))
            else:
                messages.success(
                    request,
                    gettext("Request #%(request)s is %(state)s.")
                    % {"request": created.pk, "state": pgettext("status", created.state)},
                )
                return redirect("images:image-request-detail", pk=created.pk)
        return render(
            request, "images/imagerequest_form.html", {"form": form, "creating": True}, status=400
        )


class ImageRequestEditView(LoginRequiredMixin, View):
    """Edit a draft, or a request sent back for changes."""

    def _get(self, request: HttpRequest, pk: int) -> ImageRequest:
        return get_object_or_404(image_request_list_for_actor(Actor(user=request.user)), pk=pk)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self._get(request, pk)
        form = ImageRequestForm(initial={f: getattr(obj, f) for f in ImageRequestForm.base_fields})
        for name in ("name", "kind", "os_family"):
            form.fields[name].disabled = True
        return render(request, "images/imagerequest_form.html", {"form": form, "obj": obj})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self._get(request, pk)
        data = request.POST.copy()
        for name in ("name", "kind", "os_family"):
            data[name] = getattr(obj, name)
        form = ImageRequestForm(data)
        if form.is_valid():
            try:
                image_request_update(
                    request=obj,
                    actor=Actor(user=request.user),
                    **{f: form.cleaned_data[f] for f in EDIT_FIELDS},
                )
                if request.POST.get("submit") == "1":
                    image_request_submit(request=obj, actor=Actor(user=request.user))
            except ValidationError as exc:
                _apply_errors(form, exc)
            except (IllegalTransition, APIException) as exc:
                form.add_error(None, str(getattr(exc, "detail", exc)))
            else:
                return redirect("images:image-request-detail", pk=obj.pk)
        return render(
            request, "images/imagerequest_form.html", {"form": form, "obj": obj}, status=400
        )


class ImageRequestDetailView(LoginRequiredMixin, View):
    """The request: timeline, policy report, build progress (htmx-polled) and result."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor = Actor(user=request.user)
        requests = image_request_list_for_actor(actor)
        obj = get_object_or_404(requests.prefetch_related("events"), pk=pk)
        context: dict[str, Any] = {
            "obj": obj,
            "job": obj.build_job,
            "actions": image_request_allowed_actions(obj, actor),
            "live": obj.state
            in (RequestState.APPROVED, RequestState.BUILDING, RequestState.SCANNING),
        }
        if request.headers.get("HX-Request"):
            seen = request.GET.get("seen")
            if seen and seen != obj.state:
                # The request moved on (built, failed, published): the badge, the actions
                # (Publish candidate) and the gate live outside the panel, so the whole page
                # follows the job to its end.
                refresh = HttpResponse(status=204)
                refresh["HX-Refresh"] = "true"
                return refresh
            return render(request, "images/imagerequest_build_partial.html", context)
        if obj.state == RequestState.SCANNING and obj.image_version is not None:
            context["gate"] = image_version_gate(obj.image_version)  # recomputed: no cache
        return render(request, "images/imagerequest_detail.html", context)


class ImageRequestActionView(LoginRequiredMixin, View):
    """POST a transition from the request page: submit, approve, reject, request-changes,
    comment, publish."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        actor = Actor(user=request.user)
        obj = get_object_or_404(image_request_list_for_actor(actor), pk=pk)
        text = request.POST.get("text", "")
        try:
            if action == "submit":
                image_request_submit(request=obj, actor=actor)
            elif action == "approve":
                _, job = image_request_approve(request=obj, actor=actor, comment=text)
                messages.success(
                    request, gettext("Approved; build job #%(job)s started.") % {"job": job.pk}
                )
            elif action == "reject":
                image_request_reject(request=obj, actor=actor, reason=text)
            elif action == "request-changes":
                image_request_request_changes(request=obj, actor=actor, comment=text)
            elif action == "comment":
                image_request_comment(request=obj, actor=actor, text=text)
            elif action == "publish":
                if obj.image_version is None:
                    raise IllegalTransition(
                        gettext_lazy("There is no built version to publish yet.")
                    )
                image_version_publish(version=obj.image_version, actor=actor)
                messages.success(
                    request, gettext("Published: the catalog now serves the new digest.")
                )
            else:
                return HttpResponse(status=404)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except (IllegalTransition, APIException) as exc:
            messages.error(request, str(getattr(exc, "detail", exc)))
        return redirect("images:image-request-detail", pk=pk)
