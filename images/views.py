"""UI views of the images app: the catalog list and a catalog entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpResponse
from django.views.generic import DetailView, FormView, TemplateView

from .filtersets import BaseImageFilterSet
from .models import BaseImage
from .policy import MAX_DOCKERFILE_BYTES, DockerfileInputError, Finding
from .policy.config import SEVERITIES
from .selectors import base_image_detail, base_image_list, image_version_current
from .services import dockerfile_check
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


# --- Check Dockerfile ----------------------------------------------------------------------------


class DockerfileCheckForm(forms.Form):
    """Paste or upload a Dockerfile, optionally for a service and a purpose."""

    dockerfile = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}),
        label="Dockerfile",
    )
    file = forms.FileField(required=False, label="…or upload a file")
    service = forms.CharField(required=False, max_length=63, help_text="optional service name")
    purpose = forms.ChoiceField(
        choices=[
            ("service", "Service image"),
            ("runtime-recipe", "Runtime base-image recipe"),
            ("build-recipe", "Build base-image recipe"),
        ],
        initial="service",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_DOCKERFILE_BYTES:
                raise forms.ValidationError(
                    f"The file is {upload.size} bytes; the limit is {MAX_DOCKERFILE_BYTES} "
                    "bytes (256 KiB)."
                )
            data["text"] = upload.read(MAX_DOCKERFILE_BYTES + 1)
        elif data.get("dockerfile", "").strip():
            # Browsers send CRLF line ends from a textarea.
            data["text"] = data["dockerfile"].replace("\r\n", "\n")
        else:
            raise forms.ValidationError("Paste a Dockerfile or choose a file to upload.")
        return data


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
        counts = {s: sum(f.severity == s for f in check.result.findings) for s in SEVERITIES}
        return self.render_to_response(
            self.get_context_data(
                form=form,
                check=check,
                result=check.result,
                counts=counts,
                lines=dockerfile_lines(check.text, check.result.findings),
            )
        )
