"""API of findings on image versions: `GET /api/v1/image-versions/{id}/findings/`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.pagination import KeysetPagination

from ..choices import FixState, ScanState, Severity
from ..models import FINDING_ORDER, Finding, ImageVersion, Waiver
from ..scan_selectors import (
    FilterError,
    FindingFilters,
    findings_waivers,
    image_version_findings,
)


class FindingSerializer(serializers.Serializer[Finding]):
    """One finding: the advisory, the package, the versions and whether a waiver covers it."""

    id = serializers.IntegerField()
    advisory = serializers.SerializerMethodField()
    package = serializers.SerializerMethodField()
    installed_version = serializers.CharField()
    fixed_version = serializers.CharField()
    fix_state = serializers.CharField()
    severity = serializers.CharField()
    needs_review = serializers.CharField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField()
    resolution = serializers.CharField()
    waived = serializers.SerializerMethodField()
    waiver = serializers.SerializerMethodField()

    def _waiver(self, obj: Finding) -> Waiver | None:
        waivers: dict[int, Waiver] = self.context.get("waivers", {})
        return waivers.get(obj.pk)

    def get_advisory(self, obj: Finding) -> dict[str, Any]:
        advisory = obj.advisory
        return {
            "id": advisory.osv_id,
            "aliases": [a.alias for a in advisory.aliases.all()],
            "summary": advisory.summary,
            "severity": advisory.severity,
            "withdrawn": advisory.withdrawn,
        }

    def get_package(self, obj: Finding) -> dict[str, Any]:
        package = obj.package
        return {
            "ecosystem": package.ecosystem,
            "name": package.name,
            "version": package.version,
            "arch": package.arch,
            "source_name": package.source_name,
            "source_version": package.source_version,
            "purl": package.purl,
            "matched_name": obj.matched_name,
        }

    def get_waived(self, obj: Finding) -> bool:
        return self._waiver(obj) is not None

    def get_waiver(self, obj: Finding) -> int | None:
        waiver = self._waiver(obj)
        return waiver.pk if waiver is not None else None


class FindingPagination(KeysetPagination):
    """Cursor pages of findings, with the version's scan state and the counts by severity
    its scan keeps (`scan_summary`, `open` among them): the total without a COUNT(*)."""

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        body = super().get_paginated_response_schema(schema)
        body["required"] = [*body["required"], "scan_state", "scan_summary"]
        body["properties"]["scan_state"] = {"type": "string", "enum": ScanState.values}
        body["properties"]["scan_summary"] = {
            "type": "object",
            "additionalProperties": True,
            "description": "Open findings of the last match by severity, `open`, `fixable`, "
            "`needs_review` and `matched_at`; empty before the first match.",
        }
        return body


class ImageVersionFindingActions:
    """Mixed into `ImageVersionViewSet` (which declares `"findings": images:read`)."""

    keyset_ordering = FINDING_ORDER  # of the `findings` action (the list pages by number)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "severity",
                OpenApiTypes.STR,
                description=f"comma list of {', '.join(Severity.values)}",
            ),
            OpenApiParameter("fix_state", OpenApiTypes.STR, enum=FixState.values),
            OpenApiParameter("package", OpenApiTypes.STR, description="package name substring"),
            OpenApiParameter("waived", OpenApiTypes.BOOL),
            OpenApiParameter("include_resolved", OpenApiTypes.BOOL),
        ],
        responses=FindingSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=FindingPagination)
    def findings(self: Any, request: Request, pk: str | None = None) -> Response:
        """Open findings of this version's scan, worst first (severity, fixable, package), in
        cursor pages; the counts by severity are the version's `scan_summary`."""
        try:
            filters = FindingFilters.parse(request.query_params)
        except FilterError as exc:
            raise exceptions.ValidationError({exc.field: exc.message}) from exc
        version: ImageVersion = self.get_object()
        listing = image_version_findings(version=version, filters=filters)
        rows = list(self.paginate_queryset(listing.findings) or [])
        waivers = findings_waivers(version=version, listing=listing, page=rows)
        data = FindingSerializer(rows, many=True, context={"waivers": waivers}).data  # type: ignore[arg-type]
        response: Response = self.get_paginated_response(data)
        response.data["scan_state"] = version.scan_state
        response.data["scan_summary"] = version.scan_summary or {}
        return response
