"""API of image requests: `/api/v1/image-requests/` (create, edit, submit, review)."""

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.responses import job_accepted
from portal.choices import Scope

from ..filtersets import ImageRequestFilterSet
from ..models import ImageRequest
from ..selectors import image_request_list_for_actor
from ..services import (
    image_request_approve,
    image_request_comment,
    image_request_create,
    image_request_reject,
    image_request_request_changes,
    image_request_submit,
    image_request_update,
)
from .serializers import (
    ImageRequestCreateSerializer,
    ImageRequestSerializer,
    ImageRequestTextSerializer,
    ImageRequestUpdateSerializer,
)


class ImageRequestViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Base-image requests: create, edit, submit; reviewers approve, reject, request changes.

    Approve answers 202 with the build job (`{"job": …}`, `Location: /api/v1/jobs/<id>/`).
    Illegal transitions and duplicates are 409; approving your own request is 403.
    """

    serializer_class = ImageRequestSerializer
    filterset_class = ImageRequestFilterSet
    http_method_names = ["get", "post", "patch", "head", "options"]
    required_scopes = {
        "list": Scope.IMAGES_READ,
        "retrieve": Scope.IMAGES_READ,
        "create": Scope.IMAGES_WRITE,
        "partial_update": Scope.IMAGES_WRITE,
        "submit": Scope.IMAGES_WRITE,
        "comment": Scope.IMAGES_WRITE,
        "approve": Scope.IMAGES_REVIEW,
        "reject": Scope.IMAGES_REVIEW,
        "request_changes": Scope.IMAGES_REVIEW,
    }

    def get_queryset(self) -> QuerySet[ImageRequest]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return ImageRequest.objects.none()
        requests = image_request_list_for_actor(Actor.from_request(self.request))
        return requests.prefetch_related("events")

    def _data(self, obj: ImageRequest) -> dict[str, Any]:
        obj = self.get_queryset().get(pk=obj.pk)
        return self.get_serializer(obj).data

    def _text(self, request: Request, key: str) -> str:
        body = ImageRequestTextSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data.get(key) or ""

    @extend_schema(request=ImageRequestCreateSerializer, responses={201: ImageRequestSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a draft request (or submit it at once with `submit: true`)."""
        body = ImageRequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = image_request_create(actor=Actor.from_request(request), **body.validated_data)
        return Response(self._data(created), status=201)

    @extend_schema(request=ImageRequestUpdateSerializer, responses=ImageRequestSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Edit a draft, or a request sent back for changes."""
        body = ImageRequestUpdateSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if not body.validated_data:
            raise exceptions.ValidationError({"detail": gettext_lazy("Nothing to change.")})
        updated = image_request_update(
            request=self.get_object(), actor=Actor.from_request(request), **body.validated_data
        )
        return Response(self._data(updated))

    @extend_schema(request=None, responses=ImageRequestSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str | None = None) -> Response:
        """draft|changes_requested → submitted, with the policy report."""
        done = image_request_submit(request=self.get_object(), actor=Actor.from_request(request))
        return Response(self._data(done))

    @extend_schema(request=ImageRequestTextSerializer, responses=ImageRequestSerializer)
    @action(detail=True, methods=["post"])
    def comment(self, request: Request, pk: str | None = None) -> Response:
        """Add a comment (`{"text": …}`) to the timeline."""
        obj = self.get_object()
        text = self._text(request, "text") or self._text(request, "comment")
        image_request_comment(request=obj, actor=Actor.from_request(request), text=text)
        return Response(self._data(obj), status=201)

    @extend_schema(request=ImageRequestTextSerializer, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """submitted → approved; starts the build job (202 with the job)."""
        obj, job = image_request_approve(
            request=self.get_object(),
            actor=Actor.from_request(request),
            comment=self._text(request, "comment"),
        )
        return job_accepted(request, job, request=self._data(obj))

    @extend_schema(request=ImageRequestTextSerializer, responses=ImageRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        """submitted → rejected (`{"reason": …}` required)."""
        reason = self._text(request, "reason") or self._text(request, "comment")
        done = image_request_reject(
            request=self.get_object(), actor=Actor.from_request(request), reason=reason
        )
        return Response(self._data(done))

    @extend_schema(request=ImageRequestTextSerializer, responses=ImageRequestSerializer)
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request: Request, pk: str | None = None) -> Response:
        """submitted → changes_requested (`{"comment": …}` required)."""
        comment = self._text(request, "comment") or self._text(request, "text")
        done = image_request_request_changes(
            request=self.get_object(), actor=Actor.from_request(request), comment=comment
        )
        return Response(self._data(done))
