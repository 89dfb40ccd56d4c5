"""`/api/v1/deployments/`: deployments, and their releases (create = render + validate +
store)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from images.models import ImageVersion
from portal.actors import Actor
from portal.api.pagination import KeysetPagination
from portal.api.rows import RowListMixin, row_page
from portal.choices import Scope
from portal.sql_hints import joins_as_written

from ..filtersets import DeploymentFilterSet
from ..models import BinaryVersion, Deployment
from ..selectors import (
    deployment_list,
    deployment_list_for_actor,
    deployment_readable,
    release_list,
)
from ..services import deployment_create, release_create
from .serializers import (
    DeploymentSerializer,
    ReleaseCreateSerializer,
    ReleaseDetailSerializer,
    ReleaseSerializer,
)


class DeploymentViewSet(
    RowListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Deployments, and their releases (create = render + validate + store)."""

    required_scopes = {
        "list": Scope.DEPLOYMENTS_READ,
        "retrieve": Scope.DEPLOYMENTS_READ,
        "releases": Scope.DEPLOYMENTS_READ,
        "create": Scope.DEPLOYMENTS_WRITE,
        "create_release": Scope.DEPLOYMENTS_WRITE,
    }
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilterSet
    keyset_ordering = ("-number",)  # of the `releases` action (the list pages by number)

    def get_queryset(self) -> QuerySet[Deployment]:
        actor = Actor.from_request(self.request)
        if self.action == "releases":
            # Its releases need only that the reader may see it: the list's seven-table
            # row was 19 ms of the busiest deployment's 53 (planning, mostly).
            return deployment_readable(actor)
        return deployment_list_for_actor(actor)

    def get_object(self) -> Deployment:
        with joins_as_written():  # by primary key (portal.sql_hints)
            deployment: Deployment = super().get_object()
        return deployment

    def create(self, request: Request) -> Response:
        """Put a service into an environment."""
        data = DeploymentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        deployment = deployment_create(actor=Actor.from_request(request), **values)
        body = DeploymentSerializer(deployment_list().get(pk=deployment.pk))
        return Response(body.data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=ReleaseSerializer(many=True))
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        pagination_class=KeysetPagination,
    )
    def releases(self, request: Request, pk: str | None = None) -> Response:
        """The deployment's releases, newest first (cursor pages)."""
        deployment = self.get_object()
        releases = release_list().filter(deployment=deployment)
        response = row_page(self, releases, ReleaseSerializer(context={"request": request}))
        if response is not None:
            return response
        page = self.paginate_queryset(releases)
        return self.get_paginated_response(ReleaseSerializer(page, many=True).data)

    @extend_schema(request=ReleaseCreateSerializer, responses={201: ReleaseDetailSerializer})
    @releases.mapping.post
    def create_release(self, request: Request, pk: str | None = None) -> Response:
        """Render and validate a release; 201 with the manifest, 400 with the validator's errors."""
        deployment = self.get_object()
        data = ReleaseCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        binary = runtime = None
        if data.validated_data.get("binary_version") is not None:
            binary = (
                BinaryVersion.objects.select_related("service")
                .filter(pk=data.validated_data["binary_version"])
                .first()
            )
            if binary is None:
                raise exceptions.ValidationError(
                    {"binary_version": gettext_lazy("No such binary version.")}
                )
        if data.validated_data.get("runtime_version") is not None:
            runtime = (
                ImageVersion.objects.select_related("base_image", "registry")
                .filter(pk=data.validated_data["runtime_version"])
                .first()
            )
            if runtime is None:
                raise exceptions.ValidationError(
                    {"runtime_version": gettext_lazy("No such image version.")}
                )
        release = release_create(
            actor=Actor.from_request(request),
            deployment=deployment,
            binary_version=binary,
            runtime_version=runtime,
        )
        body = ReleaseDetailSerializer(release_list().defer(None).get(pk=release.pk))
        return Response(body.data, status=status.HTTP_201_CREATED)
