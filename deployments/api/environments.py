"""`/api/v1/environments/`: environments (created by platform admins), their nodes' fetch
token and their hostPath sync DaemonSet."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.rows import RowListMixin
from portal.choices import Scope

from ..models import Environment
from ..selectors import environment_hostpath_sync_yaml, environment_list
from ..services import environment_create, environment_fetch_token_create
from ._common import YAML_RESPONSE, YamlRenderer, _yaml_response
from .serializers import EnvironmentSerializer, FetchTokenSerializer


class EnvironmentViewSet(
    RowListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Environments (created by platform admins) and their hostPath sync DaemonSet."""

    required_scopes = {
        "list": Scope.DEPLOYMENTS_READ,
        "retrieve": Scope.DEPLOYMENTS_READ,
        "hostpath_sync": Scope.DEPLOYMENTS_READ,
        "create": Scope.DEPLOYMENTS_WRITE,
        "fetch_token": Scope.DEPLOYMENTS_WRITE,
    }
    serializer_class = EnvironmentSerializer
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_renderers(self) -> list[Any]:
        if self.action in {"manifest", "hostpath_sync"}:
            return [YamlRenderer(), renderers.JSONRenderer()]
        return super().get_renderers()

    def get_queryset(self) -> QuerySet[Environment]:
        return environment_list()

    def create(self, request: Request) -> Response:
        """Add an environment (platform admins)."""
        data = EnvironmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = {k: v for k, v in data.validated_data.items()}
        env = environment_create(actor=Actor.from_request(request), **values)
        return Response(
            EnvironmentSerializer(environment_list().get(pk=env.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses={201: FetchTokenSerializer})
    @action(detail=True, methods=["post"], url_path="fetch-token")
    def fetch_token(self, request: Request, name: str | None = None) -> Response:
        """A new `binaries:read` token for the environment's nodes (platform admins).

        The answer holds the token's secret (shown once) and the `kubectl create secret`
        command that stores it as the Secret the manifests read. The environment's previous
        fetch tokens are revoked (`revoked_tokens`, `revoked_notice`): replace the Secret.
        """
        fetch = environment_fetch_token_create(
            environment=self.get_object(), actor=Actor.from_request(request)
        )
        response = Response(FetchTokenSerializer(fetch).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(responses={(200, "text/yaml"): YAML_RESPONSE})
    def hostpath_sync(self, request: Request, name: str) -> HttpResponse:
        """The ConfigMap + DaemonSet that keep this environment's hostPath binaries on nodes."""
        environment = get_object_or_404(Environment, name=name)
        try:
            text = environment_hostpath_sync_yaml(environment, actor=Actor.from_request(request))
        except ValueError as exc:
            raise exceptions.ValidationError({"environment": str(exc)}) from exc
        return _yaml_response(text, f"binary-sync-{environment.name}.yaml")
