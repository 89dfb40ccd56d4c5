"""Curation screens of platform admins: an entry's status and replacement; revoking a
version after seeing what it breaks."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from portal.actors import Actor
from portal.jobs import IllegalTransition

from ..models import BaseImage, ImageVersion
from ..services.curation import (
    base_image_curate,
    image_version_revoke,
    image_version_revoke_preview,
)


class BaseImageCurateView(LoginRequiredMixin, View):
    """POST status, replacement and reason from the base image page's curation form."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        image = get_object_or_404(BaseImage, pk=pk)
        replacement_id = request.POST.get("replacement", "")
        replacement = (
            BaseImage.objects.filter(pk=int(replacement_id)).first()
            if replacement_id.isdigit()
            else None
        )
        try:
            base_image_curate(
                actor=Actor(user=request.user),
                image=image,
                status=request.POST.get("status", ""),
                reason=request.POST.get("reason", ""),
                replacement=replacement,
            )
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(
                request,
                _("%(name)s is %(status)s now.")
                % {"name": image.name, "status": str(image.get_status_display()).lower()},
            )
        return redirect("images:base-image-detail", pk=image.pk)


class ImageVersionRevokeView(LoginRequiredMixin, View):
    """GET what revoking breaks; POST the revocation with its reason."""

    def _render(
        self, request: HttpRequest, version: ImageVersion, errors: list[str] | None = None
    ) -> HttpResponse:
        return render(
            request,
            "images/imageversion_revoke.html",
            {
                "version": version,
                "image": version.base_image,
                "preview": image_version_revoke_preview(version),
                "errors": errors or [],
                "reason": request.POST.get("reason", ""),
            },
            status=400 if errors else 200,
        )

    def _version(self, pk: int) -> ImageVersion:
        return get_object_or_404(
            ImageVersion.objects.select_related("base_image", "registry"), pk=pk
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._version(pk)
        if not Actor(user=request.user).is_platform_admin:
            raise PermissionDenied(_("Revoking an image version needs the platform-admin role."))
        return self._render(request, version)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = self._version(pk)
        try:
            image_version_revoke(
                actor=Actor(user=request.user),
                version=version,
                reason=request.POST.get("reason", ""),
            )
        except ValidationError as exc:
            return self._render(request, version, errors=list(exc.messages))
        except IllegalTransition as exc:
            return self._render(request, version, errors=[str(exc)])
        messages.success(request, _("Version %(tag)s is revoked.") % {"tag": version.tag})
        return redirect("images:image-version-detail", pk=version.pk)
