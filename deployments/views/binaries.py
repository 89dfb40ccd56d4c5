"""Binary versions in the UI: the upload form (checked before the body is read), yank, push."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext, gettext_lazy
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.choices import Role, role_at_least
from portal.jobs import IllegalTransition

from ..forms import (
    BinaryUploadForm,
)
from ..models import BinaryVersion
from ..selectors import (
    team_readable,
)
from ..services import (
    binary_version_artifact_push,
    binary_version_upload,
    binary_version_yank,
)
from ..uploads import FILE_FIELD, check_content_length, install_upload_handler
from ._common import _error_text, _reader, _service_or_404

UPLOAD_CSRF_PARAM = "csrf"


def _upload_refusal_before_body(request: HttpRequest, name: str) -> HttpResponse | None:
    """Check CSRF, the service and the user's role before a byte of the upload is read (L3).

    Django's CSRF check reads the form field first, which would parse (stream, hash and store)
    the whole body; the upload form therefore sends its token in the query string (or an
    `X-CSRFToken` header), and the check runs against that with the body left unread.
    """
    service = _service_or_404(name, _reader(request))
    actor = Actor(user=request.user)
    role = actor.role_in(service.team)
    if role is None or not role_at_least(role, Role.DEVELOPER):
        raise PermissionDenied(
            gettext("Uploading to %(service)s needs the developer role in team %(team)s.")
            % {"service": service.name, "team": service.team.name}
        )
    header = "HTTP_X_CSRFTOKEN"
    if not request.META.get(header) and request.GET.get(UPLOAD_CSRF_PARAM):
        request.META[header] = request.GET[UPLOAD_CSRF_PARAM]
    # The middleware consults request.POST before the header; an empty one keeps the body unread.
    request._post, request._files = QueryDict(), MultiValueDict()  # type: ignore[attr-defined]
    try:
        # The callback must not be the csrf_exempt view itself, or the check is skipped.
        refused = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(
            request, _binary_upload, (), {}
        )
    finally:
        del request._post, request._files  # type: ignore[attr-defined]
    return refused


@csrf_exempt
@login_required
def binary_upload_view(request: HttpRequest, name: str) -> HttpResponse:
    """The upload form. CSRF, the service and the role are checked before the body is read;
    the body is then parsed by the streaming handler."""
    if request.method == "POST":
        refused = _upload_refusal_before_body(request, name)
        if refused is not None:
            return refused
        handler = install_upload_handler(request)  # before anything reads request.POST
        try:
            # Parse the body here, so a refused body (413, malformed) is answered with the form
            # and its message; csrf_protect below would otherwise hit it first, unhandled.
            check_content_length(request.META)
            request.POST  # noqa: B018 - reading it parses the body
        except (ValidationError, APIException) as exc:
            return render(
                request,
                "deployments/binaryversion_upload.html",
                {
                    "service": _service_or_404(name),
                    "form": BinaryUploadForm(),
                    "body_error": _error_text(exc),
                },
                status=getattr(exc, "status_code", 400),
            )
        return _binary_upload(request, name, handler)
    return _binary_upload(request, name, None)


@csrf_protect
def _binary_upload(request: HttpRequest, name: str, handler: Any) -> HttpResponse:
    service = _service_or_404(name)
    actor = Actor(user=request.user)
    context: dict[str, Any] = {"service": service}
    if request.method != "POST":
        context["form"] = BinaryUploadForm()
        return render(request, "deployments/binaryversion_upload.html", context)
    upload = None
    form = BinaryUploadForm()
    try:
        check_content_length(request.META)
        form = BinaryUploadForm(request.POST, request.FILES)
        upload = request.FILES.get(FILE_FIELD)
        if upload is None and handler is not None and handler.interrupted:
            raise ValidationError(gettext_lazy("The upload ended before the file was complete."))
        binary, created = binary_version_upload(
            actor=actor,
            service=service,
            upload=upload,
            version=request.POST.get("version", ""),
            arch=request.POST.get("arch", ""),
            sha256=request.POST.get("sha256", ""),
            commit=request.POST.get("commit", ""),
            build_url=request.POST.get("build_url", ""),
            built_in=request.POST.get("built_in", ""),
        )
    except (ValidationError, APIException) as exc:
        status = getattr(exc, "status_code", 400)
        if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, _error_text(exc))
        context["form"] = form
        return render(request, "deployments/binaryversion_upload.html", context, status=status)
    finally:
        if upload is not None:
            upload.close()
    names = {"service": binary.service.name, "version": binary.version, "arch": binary.arch}
    if created:
        text = gettext("%(service)s %(version)s (%(arch)s) uploaded.") % names
    else:
        text = gettext("%(service)s %(version)s (%(arch)s) was already there with the same sha256.")
        text %= names
    messages.success(request, text)
    return redirect("deployments:service-detail", name=service.name)


def _binary_or_404(request: HttpRequest, pk: int) -> BinaryVersion:
    """The binary version `pk` of a service the user may read (another team's: 404)."""
    readable = team_readable(_reader(request), "service__team")
    binaries = BinaryVersion.objects.select_related("service__team").filter(readable)
    return get_object_or_404(binaries, pk=pk)


class BinaryYankView(LoginRequiredMixin, View):
    """Yank a binary version from the service page."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        binary = _binary_or_404(request, pk)
        try:
            binary_version_yank(actor=Actor(user=request.user), binary_version=binary)
            messages.success(
                request,
                gettext("%(binary)s yanked: it can no longer go into new releases.")
                % {"binary": binary},
            )
        except (IllegalTransition, APIException) as exc:
            messages.error(request, _error_text(exc))
        return redirect("deployments:service-detail", name=binary.service.name)


class BinaryArtifactView(LoginRequiredMixin, View):
    """Push a binary version as an OCI artifact (image volumes); then follow the job."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        binary = _binary_or_404(request, pk)
        try:
            job, created = binary_version_artifact_push(
                actor=Actor(user=request.user), binary_version=binary
            )
        except APIException as exc:
            if getattr(exc, "status_code", 0) == 403:
                raise PermissionDenied(_error_text(exc)) from exc
            messages.error(request, _error_text(exc))
            return redirect("deployments:service-detail", name=binary.service.name)
        messages.success(
            request,
            (
                gettext("Pushing %(binary)s as an OCI artifact (job #%(job)s).")
                if created
                else gettext(
                    "Pushing %(binary)s as an OCI artifact (job #%(job)s): a push was already "
                    "under way."
                )
            )
            % {"binary": binary, "job": job.pk},
        )
        return redirect("job-detail", job.pk)
