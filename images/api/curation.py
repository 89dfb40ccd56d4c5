"""API actions of catalog curation (platform admins): an entry's status and replacement,
and revoking a version with its reason (GET shows what it breaks first)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor

from ..models import BaseImage
from ..services.curation import (
    base_image_curate,
    image_version_revoke,
    image_version_revoke_preview,
)


def _text(data: Any, name: str) -> str:
    value = data.get(name, "") if hasattr(data, "get") else ""
    if not isinstance(value, str):
        raise exceptions.ValidationError({name: gettext("Must be a string.")})
    return value


class BaseImageCurationActions:
    """`POST /api/v1/base-images/<id>/curate/` {status, reason, replacement (id or name)}."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def curate(self, request: Request, pk: str | None = None) -> Response:
        """Set the status (approved, deprecated, restricted, blocked) and the replacement."""
        image = self.get_object()  # type: ignore[attr-defined]  # a GenericViewSet mixin
        raw = request.data.get("replacement") if hasattr(request.data, "get") else None
        replacement = None
        if raw not in (None, ""):
            query = BaseImage.objects.filter(
                pk=raw if isinstance(raw, int) else -1
            ) | BaseImage.objects.filter(name=str(raw))
            replacement = query.first()
            if replacement is None:
                raise exceptions.ValidationError(
                    {"replacement": gettext("No catalog image %(raw)r.") % {"raw": raw}}
                )
        image = base_image_curate(
            actor=Actor.from_request(request),
            image=image,
            status=_text(request.data, "status"),
            reason=_text(request.data, "reason"),
            replacement=replacement,
        )
        return Response(
            {
                "id": image.pk,
                "name": image.name,
                "status": image.status,
                "status_note": image.status_note,
                "replacement": image.replacement.name if image.replacement else None,
            }
        )


class ImageVersionCurationActions:
    """`GET|POST /api/v1/image-versions/<id>/revoke/`: what it breaks; revoke with a reason."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get", "post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        """GET: what revoking breaks (versions built FROM it; deployments: `used_by`).
        POST {reason}: revoke (409 when already revoked)."""
        version = self.get_object()  # type: ignore[attr-defined]  # a GenericViewSet mixin
        preview = image_version_revoke_preview(version)
        body = {
            "id": version.pk,
            "state": version.state,
            "current": preview["current"],
            "built_from": preview["built_from"],
            "used_by": f"/image-versions/{version.pk}/used-by/",
        }
        if request.method == "GET":
            return Response(body)
        version = image_version_revoke(
            actor=Actor.from_request(request), version=version, reason=_text(request.data, "reason")
        )
        return Response({**body, "state": version.state})
