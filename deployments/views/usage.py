"""The "Used by" fragment the images app's pages load with htmx."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from images.models import BaseImage, ImageVersion
from portal.actors import Actor

from ..selectors.usage import image_usage


@login_required
def base_image_used_by(request: HttpRequest, pk: int) -> HttpResponse:
    """Deployments on any version of a base image."""
    image = get_object_or_404(BaseImage, pk=pk)
    usage = image_usage(actor=Actor(user=request.user), base_image_id=image.pk)
    return render(
        request,
        "deployments/_used_by.html",
        {"usage": usage, "subject": image.name, "per_tag": True},
    )


@login_required
def image_version_used_by(request: HttpRequest, pk: int) -> HttpResponse:
    """Deployments on one image version."""
    version = get_object_or_404(ImageVersion.objects.select_related("base_image"), pk=pk)
    usage = image_usage(actor=Actor(user=request.user), version_id=version.pk)
    subject = f"{version.base_image.name}:{version.tag}"
    return render(
        request, "deployments/_used_by.html", {"usage": usage, "subject": subject, "per_tag": False}
    )
