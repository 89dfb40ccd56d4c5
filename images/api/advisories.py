"""API of advisories: CVE search, one advisory, and (mixed in) the import action.

`GET /api/v1/advisories/?q=CVE-…` matches an OSV id or any alias (case-insensitive) or the
summary; `GET /api/v1/advisories/{id}/` is one record by its OSV id. The blast radius
(`…/{id}/impact/`) is composed by the deployments app, which knows the deployments.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from portal.choices import Scope

from ..choices import Severity
from ..models import Advisory
from ..scan_selectors import (
    AdvisoryFilters,
    FilterError,
    advisory_detail,
    advisory_get,
    advisory_search,
)
from .advisory_imports import AdvisoryImportActions

# OSV ids: CVE-2024-1234, DEBIAN-CVE-2024-1234, GHSA-xxxx-xxxx-xxxx, ALSA-2024:1234,
# openSUSE-SU-2024:0001-1, PYSEC-2021-1, GO-2022-0001 … (no '/', which ends the segment).
OSV_ID_REGEX = r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}"


class AdvisorySerializer(serializers.ModelSerializer[Advisory]):
    """An advisory in a search result."""

    id = serializers.CharField(source="osv_id")
    aliases = serializers.SerializerMethodField()
    open_findings = serializers.IntegerField(read_only=True)

    class Meta:
        model = Advisory
        fields = [
            "id",
            "summary",
            "severity",
            "cvss_score",
            "cvss_vector",
            "published",
            "modified",
            "withdrawn",
            "aliases",
            "open_findings",
        ]

    def get_aliases(self, obj: Advisory) -> list[dict[str, str]]:
        return [{"id": a.alias, "kind": a.kind} for a in obj.aliases.all()]


class AdvisoryDetailSerializer(AdvisorySerializer):
    """One advisory with its affected entries and how many scanned digests it is found in."""

    affected = serializers.SerializerMethodField()
    affected_sboms = serializers.IntegerField(read_only=True)

    class Meta(AdvisorySerializer.Meta):
        fields = [*AdvisorySerializer.Meta.fields, "details", "affected", "affected_sboms"]

    def get_affected(self, obj: Advisory) -> list[dict[str, Any]]:
        return [
            {
                "ecosystem": a.ecosystem,
                "package": a.name,
                "purl": a.purl,
                "ranges": a.ranges,
                "versions": a.versions,
                "severity": a.severity,
                "quarantined": a.quarantined,
            }
            for a in sorted(obj.affected.all(), key=lambda a: (a.ecosystem, a.name, a.pk))
        ]


class AdvisoryViewSet(
    AdvisoryImportActions,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Advisories imported from OSV records: search (`?q=`) and one record by OSV id."""

    lookup_field = "osv_id"
    lookup_url_kwarg = "osv_id"
    lookup_value_regex = OSV_ID_REGEX
    required_scopes: dict[str, str] = {
        "list": Scope.IMAGES_READ,
        "retrieve": Scope.IMAGES_READ,
        "import_records": Scope.IMAGES_REVIEW,  # POST /advisories/import/ (platform admins)
        # Methods no action takes answer 405 rather than "no scope declared" (403); POST is
        # left out on purpose: it belongs to the import action alone.
        "PUT": Scope.IMAGES_READ,
        "PATCH": Scope.IMAGES_READ,
        "DELETE": Scope.IMAGES_READ,
    }

    def get_serializer_class(self) -> type:
        return AdvisoryDetailSerializer if self.action == "retrieve" else AdvisorySerializer

    def get_queryset(self) -> QuerySet[Advisory]:
        if self.action == "retrieve":
            return advisory_detail()
        try:
            filters = AdvisoryFilters.parse(self.request.query_params)
        except FilterError as exc:
            raise exceptions.ValidationError({exc.field: exc.message}) from exc
        return advisory_search(filters)

    def get_object(self) -> Advisory:
        osv_id = self.kwargs[self.lookup_url_kwarg]
        advisory = advisory_get(osv_id, self.get_queryset())
        if advisory is None:
            raise Http404(gettext("No advisory with the OSV id %(osv_id)r.") % {"osv_id": osv_id})
        self.check_object_permissions(self.request, advisory)
        return advisory

    @extend_schema(
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="an id, an alias or text"),
            OpenApiParameter(
                "severity", OpenApiTypes.STR, description=f"comma list of {', '.join(Severity)}"
            ),
            OpenApiParameter("ecosystem", OpenApiTypes.STR, description="e.g. Debian:12"),
            OpenApiParameter("package", OpenApiTypes.STR, description="an affected package"),
            OpenApiParameter("withdrawn", OpenApiTypes.BOOL),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Search advisories: exact id/alias matches first, then the newest."""
        return super().list(request, *args, **kwargs)
