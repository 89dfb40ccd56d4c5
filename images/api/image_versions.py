"""API of image versions: `/api/v1/image-versions/` (publish, revoke, gate, findings, scans)."""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.params import parse_id
from portal.api.rows import RowListMixin
from portal.choices import Scope

from ..models import ImageVersion
from ..services import GateBlocked, image_version_gate, image_version_publish
from .curation import ImageVersionCurationActions
from .findings import ImageVersionFindingActions
from .scans import ImageVersionScanActions
from .serializers import ImageVersionDetailSerializer


class ImageVersionViewSet(
    ImageVersionScanActions,
    ImageVersionFindingActions,
    ImageVersionCurationActions,
    RowListMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Image versions (digests) with what built them; reviewers publish candidates."""

    serializer_class = ImageVersionDetailSerializer
    required_scopes = {
        "list": Scope.IMAGES_READ,
        "retrieve": Scope.IMAGES_READ,
        "publish": Scope.IMAGES_REVIEW,
        "revoke": Scope.IMAGES_REVIEW,
        "gate": Scope.IMAGES_READ,
        "findings": Scope.IMAGES_READ,
        "scan": Scope.IMAGES_WRITE,
        "sbom": Scope.IMAGES_READ,
    }

    def get_queryset(self) -> QuerySet[ImageVersion]:
        versions = ImageVersion.objects.select_related("base_image", "registry").order_by(
            "-created_at", "-id"
        )
        params = self.request.query_params
        if params.get("base_image"):
            versions = versions.filter(
                base_image_id=parse_id(params["base_image"], field="base_image")
            )
        if params.get("state"):
            versions = versions.filter(state=params["state"])
        return versions

    @extend_schema(request=None, responses=ImageVersionDetailSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """candidate → approved; the previous approved version becomes superseded.

        The publish gate is recomputed first: 409 `gate_blocked` with `blocking` (each finding
        with how to waive it) when it blocks.
        """
        try:
            version = image_version_publish(
                version=self.get_object(), actor=Actor.from_request(request)
            )
        except GateBlocked as exc:
            body = {
                "detail": str(exc.detail),
                "code": "gate_blocked",
                "blocking": getattr(exc, "blocking", []),
            }
            return Response(body, status=exc.status_code)
        return Response(self.get_serializer(version).data)

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def gate(self, request: Request, pk: str | None = None) -> Response:
        """The publish gate's verdict now: clean, blocked (with what blocks) or unscanned."""
        return Response(image_version_gate(self.get_object()).to_dict())
