"""UI views of image requests: the form, my requests, the review queue and the request page.

Each view parses input and calls the same `images.workflow` service as the API.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.jobs import IllegalTransition

from .choices import ImageKind, OsFamily, RecipeKind, RequestState
from .filtersets import ImageRequestFilterSet
from .models import ImageRequest
from .workflow import (
    image_request_allowed_actions,
    image_request_approve,
    image_request_comment,
    image_request_create,
    image_request_list_for_actor,
    image_request_reconcile,
    image_request_reject,
    image_request_request_changes,
    image_request_review_queue,
    image_request_submit,
    image_request_update,
    image_version_publish,
)

RECIPE_PLACEHOLDER = (
    "Dockerfile, e.g.\nFROM runtime/debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 "
    "LC_ALL=en_US.utf8\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n\n"
    "or a bootstrap spec (YAML), e.g.\nsuite: bookworm\nvariant: minbase\npackages: "
    "[ca-certificates, tzdata, locales]"
)


class ImageRequestForm(forms.Form):
    """The request form: what image, which OS and toolchain, the recipe and why."""

    name = forms.CharField(max_length=200, help_text="Repository name, e.g. runtime/debian-curl")
    tag = forms.CharField(max_length=128, help_text="e.g. 12 or 12-2024.06")
    kind = forms.ChoiceField(choices=ImageKind.choices)
    os_family = forms.ChoiceField(choices=OsFamily.choices, label="OS")
    os_version = forms.CharField(max_length=40, required=False, label="OS version")
    toolchain = forms.CharField(max_length=100, required=False, help_text="e.g. go 1.22")
    recipe_kind = forms.ChoiceField(choices=RecipeKind.choices, label="Recipe kind")
    recipe = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 14, "class": "code", "placeholder": RECIPE_PLACEHOLDER}
        ),
        strip=False,
        max_length=256 * 1024,
    )
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=10_000)


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
            raise PermissionDenied("The review queue is for platform admins.")
        if review:
            requests = image_request_review_queue()
            filterset = None
        else:
            requests = image_request_list_for_actor(actor)
            image_request_reconcile(requests)
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
                messages.success(request, f"Request #{created.pk} is {created.state}.")
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
        image_request_reconcile(requests.filter(pk=pk))
        obj = get_object_or_404(requests.prefetch_related("events"), pk=pk)
        context = {
            "obj": obj,
            "job": obj.build_job,
            "actions": image_request_allowed_actions(obj, actor),
            "live": obj.state
            in (RequestState.APPROVED, RequestState.BUILDING, RequestState.SCANNING),
        }
        if request.headers.get("HX-Request"):
            return render(request, "images/imagerequest_build_partial.html", context)
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
                messages.success(request, f"Approved; build job #{job.pk} started.")
            elif action == "reject":
                image_request_reject(request=obj, actor=actor, reason=text)
            elif action == "request-changes":
                image_request_request_changes(request=obj, actor=actor, comment=text)
            elif action == "comment":
                image_request_comment(request=obj, actor=actor, text=text)
            elif action == "publish":
                if obj.image_version is None:
                    raise IllegalTransition("There is no built version to publish yet.")
                image_version_publish(version=obj.image_version, actor=actor)
                messages.success(request, "Published: the catalog now serves the new digest.")
            else:
                return HttpResponse(status=404)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except (IllegalTransition, APIException) as exc:
            messages.error(request, str(getattr(exc, "detail", exc)))
        return redirect("images:image-request-detail", pk=pk)
