"""API views of the images app."""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.choices import Scope

from ..filtersets import BaseImageFilterSet
from ..models import BaseImage
from ..references import ReferenceError
from ..selectors import base_image_detail, base_image_list, base_image_resolve
from .serializers import BaseImageDetailSerializer, BaseImageSerializer, ResolveSerializer


class BaseImageViewSet(viewsets.ReadOnlyModelViewSet):
    """The catalog of base images."""

    required_scopes = {"*": Scope.IMAGES_READ}
    filterset_class = BaseImageFilterSet

    def get_queryset(self) -> QuerySet[BaseImage]:
        return base_image_detail() if self.action == "retrieve" else base_image_list()

    def get_serializer_class(self) -> type:
        return BaseImageDetailSerializer if self.action == "retrieve" else BaseImageSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ref",
                OpenApiTypes.STR,
                required=True,
                description="name, name:tag, registry/name:tag or name@sha256:…",
            )
        ],
        responses=ResolveSerializer,
    )
    @action(detail=False, methods=["get"], filterset_class=None)
    def resolve(self, request: Request) -> Response:
        """Is this reference approved? Answers with the digest-pinned reference to use."""
        ref = request.query_params.get("ref", "")
        if not ref.strip():
            raise exceptions.ValidationError({"ref": "Give ?ref=<image reference>."})
        try:
            res = base_image_resolve(ref)
        except ReferenceError as exc:
            raise exceptions.ValidationError({"ref": str(exc)}) from exc
        replacement = None
        if res.image is not None and res.image.replacement is not None:
            rv = res.replacement_version
            replacement = {
                "name": res.image.replacement.name,
                "pinned_ref": rv.pull_ref if rv else None,
            }
        data = {
            "ref": ref,
            "approved": res.approved,
            "image": res.image.name if res.image else None,
            "status": res.image.status if res.image else None,
            "tag": res.version.tag if res.version else None,
            "digest": res.version.digest if res.version else None,
            "pinned_ref": res.version.pull_ref if res.version else None,
            "version_state": res.version.state if res.version else None,
            "eol_date": res.image.eol_date if res.image else None,
            "replacement": replacement,
            "reasons": res.reasons,
        }
        return Response(ResolveSerializer(data).data)
