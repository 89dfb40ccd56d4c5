"""API actions of binary scans: `POST /api/v1/binaries/{id}/scan/` (202 + job) and
`GET /api/v1/binaries/{id}/sbom/?format=cyclonedx-json|syft-json`."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from images.api.scans import SbomNegotiation, parse_force, sbom_format, sbom_response
from images.services.scans import SBOM_FORMATS, sbom_export
from portal.actors import Actor
from portal.api.responses import job_accepted
from portal.templatetags.portal_i18n import status_label

from ..services import binary_version_scan_start


class BinaryVersionScanActions(SbomNegotiation):
    """Mixed into `BinaryVersionViewSet` (which declares the scopes of `scan` and `sbom`)."""

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("force", bool, description="Scan again even if scanned.")],
        responses={202: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def scan(self, request: Request, pk: str | None = None) -> Response:
        """Queue a scan of the binary (202 + job): developers of the service's team."""
        binary = self.get_object()  # type: ignore[attr-defined]
        job = binary_version_scan_start(
            binary_id=binary.pk, actor=Actor.from_request(request), force=parse_force(request)
        )
        return job_accepted(request, job, binary={"id": binary.pk, "sha256": binary.sha256})

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format", str, enum=list(SBOM_FORMATS), description="Default cyclonedx-json."
            )
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def sbom(self, request: Request, pk: str | None = None) -> HttpResponse:
        """Download the binary's SBOM: CycloneDX 1.6 JSON (default) or syft-json."""
        binary = self.get_object()  # type: ignore[attr-defined]
        fmt = sbom_format(request)
        if binary.sbom_id is None:
            raise exceptions.NotFound(
                gettext(
                    "%(binary)s has not been scanned yet (scan state: %(scan_state)s); POST "
                    "…/scan/ to scan it."
                )
                % {"binary": binary, "scan_state": status_label(binary.scan_state)}
            )
        try:
            export = sbom_export(
                sbom=binary.sbom,
                fmt=fmt,
                subject_name=f"{binary.service.name}-{binary.version}-{binary.arch}",
            )
        except FileNotFoundError as exc:
            raise exceptions.NotFound(
                gettext("The SBOM of %(binary)s is missing from storage; scan it again.")
                % {"binary": binary}
            ) from exc
        return sbom_response(export.content, export.content_type, export.filename)
