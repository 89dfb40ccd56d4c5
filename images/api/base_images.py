"""API of base images: `/api/v1/base-images/` (list, detail, compatibility matrix, curation)."""

import re

from django.db.models import QuerySet
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.rows import RowListMixin
from portal.choices import Scope

from ..choices import ImageKind
from ..filtersets import BaseImageFilterSet
from ..models import BaseImage
from ..references import ReferenceError
from ..selectors import (
    base_image_detail,
    base_image_list,
    base_image_resolve,
    compatibility_matrix,
)
from .curation import BaseImageCurationActions
from .serializers import BaseImageDetailSerializer, BaseImageSerializer, ResolveSerializer


class BaseImageViewSet(BaseImageCurationActions, RowListMixin, viewsets.ReadOnlyModelViewSet):
    """The catalog of base images; platform admins curate entries."""

    required_scopes = {
        "*": Scope.IMAGES_READ,
        "compatibility": Scope.IMAGES_READ,
        "curate": Scope.IMAGES_REVIEW,
    }
    filterset_class = BaseImageFilterSet

    def get_queryset(self) -> QuerySet[BaseImage]:
        return base_image_detail() if self.action == "retrieve" else base_image_list(scans=False)

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
            raise exceptions.ValidationError({"ref": gettext_lazy("Give ?ref=<image reference>.")})
        try:
            res = base_image_resolve(ref)
        except ReferenceError as exc:
            raise exceptions.ValidationError({"ref": exc.text_in(gettext)}) from exc
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

    @extend_schema(
        parameters=[
            OpenApiParameter("build", OpenApiTypes.STR, description="a build image name"),
            OpenApiParameter("runtime", OpenApiTypes.STR, description="a runtime image name"),
            OpenApiParameter("compatible", OpenApiTypes.BOOL, description="only compatible"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def compatibility(self, request: Request) -> Response:
        """Approved build × runtime versions with ABI facts: compatible (same arch and libc,
        build glibc and libstdc++ no newer than the runtime's) or check per binary."""
        errors: dict[str, str] = {}
        names: dict[str, str] = {}
        for param, kind in (("build", ImageKind.BUILD), ("runtime", ImageKind.RUNTIME)):
            value = request.query_params.get(param, "").strip()
            if not value:
                continue
            if len(value) > 200 or not _IMAGE_NAME.match(value):
                errors[param] = gettext("%(value)r is not an image name (e.g. runtime/debian).") % {
                    "value": value[:200]
                }
            elif not BaseImage.objects.filter(name=value, kind=kind).exists():
                errors[param] = gettext("No %(kind)s image is named %(value)r.") % {
                    "kind": kind,
                    "value": value,
                }
            names[param] = value
        compatible = request.query_params.get("compatible", "").strip().lower()
        if compatible not in ("", "true", "false", "1", "0"):
            errors["compatible"] = gettext("compatible is true or false.")
        if errors:
            raise exceptions.ValidationError(errors)
        pairs = compatibility_matrix(
            build=names.get("build", ""),
            runtime=names.get("runtime", ""),
            compatible_only=compatible in ("true", "1"),
        )
        return Response({"count": len(pairs), "results": [p.as_dict() for p in pairs]})


_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*\Z")
