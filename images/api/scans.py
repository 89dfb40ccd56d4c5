"""API actions of the scanner on image versions: scan (202 + job) and the SBOM download."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.responses import job_accepted
from portal.templatetags.portal_i18n import status_label

from ..services.scans import (
    DEFAULT_SBOM_FORMAT,
    SBOM_FORMATS,
    image_version_scan_start,
    sbom_export,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def parse_force(request: Request) -> bool:
    """`force` from the body or the query string (a boolean); 400 otherwise."""
    raw: Any = None
    if isinstance(request.data, dict) or hasattr(request.data, "get"):
        raw = request.data.get("force")
    if raw is None:
        raw = request.query_params.get("force")
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise exceptions.ValidationError({"force": gettext_lazy("Must be a boolean (true or false).")})


def sbom_response(content: bytes, content_type: str, filename: str) -> HttpResponse:
    """The download: the SBOM as an attachment with its file name."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def sbom_format(request: Request) -> str:
    """The `format` parameter (default cyclonedx-json); 400 when unknown."""
    fmt = request.query_params.get("format", DEFAULT_SBOM_FORMAT) or DEFAULT_SBOM_FORMAT
    if fmt not in SBOM_FORMATS:
        raise exceptions.ValidationError(
            {
                "format": gettext("Unknown SBOM format %(fmt)r; use one of: %(formats)s.")
                % {"fmt": fmt[:40], "formats": ", ".join(SBOM_FORMATS)}
            }
        )
    return fmt


class SbomNegotiation:
    """`?format=` names the SBOM format here, not a DRF renderer: the SBOM action answers
    errors as JSON whatever `format` says."""

    sbom_actions: tuple[str, ...] = ("sbom",)

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        if getattr(self, "action", None) in self.sbom_actions:
            renderer = JSONRenderer()
            return renderer, str(renderer.media_type)
        negotiated: tuple[BaseRenderer, str] = super().perform_content_negotiation(  # type: ignore[misc]
            request, force
        )
        return negotiated


class ImageVersionScanActions(SbomNegotiation):
    """Mixed into `ImageVersionViewSet`: `POST …/scan/` and `GET …/sbom/`."""

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("force", bool, description="Scan again even if scanned.")],
        responses={202: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def scan(self, request: Request, pk: str | None = None) -> Response:
        """Queue a scan of this version (202 with the job; a running scan of the digest is
        returned instead of a second one). Maintainers of the owner team, platform admins."""
        version = self.get_object()  # type: ignore[attr-defined]
        job = image_version_scan_start(
            version_id=version.pk, actor=Actor.from_request(request), force=parse_force(request)
        )
        return job_accepted(request, job, version={"id": version.pk, "digest": version.digest})

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(SBOM_FORMATS), description="Default cyclonedx-json."
            )
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"])
    def sbom(self, request: Request, pk: str | None = None) -> HttpResponse:
        """Download the SBOM of this version: CycloneDX 1.6 JSON (default) or syft-json."""
        version = self.get_object()  # type: ignore[attr-defined]
        fmt = sbom_format(request)
        if version.sbom_id is None:
            raise exceptions.NotFound(
                gettext(
                    "%(version)s has not been scanned yet (scan state: %(scan_state)s); POST "
                    "…/scan/ to scan it."
                )
                % {"version": version, "scan_state": status_label(version.scan_state)}
            )
        try:
            export = sbom_export(
                sbom=version.sbom,
                fmt=fmt,
                subject_name=f"{version.base_image.name}:{version.tag}",
            )
        except FileNotFoundError as exc:
            raise exceptions.NotFound(
                gettext("The SBOM of %(version)s is missing from storage; scan it again.")
                % {"version": version}
            ) from exc
        return sbom_response(export.content, export.content_type, export.filename)
