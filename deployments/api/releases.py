"""`/api/v1/releases/`: releases (immutable): read, fetch the manifest, roll back to one,
and CD's status reports."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.pagination import KeysetPagination
from portal.api.params import parse_id
from portal.api.rows import RowListMixin
from portal.choices import Scope
from portal.sql_hints import joins_as_written

from ..models import Release
from ..selectors import release_list, release_list_for_actor
from ..services import release_rollback, release_status_report
from ._common import YAML_RESPONSE, YamlRenderer, _yaml_response
from .serializers import ReleaseDetailSerializer, ReleaseSerializer, ReleaseStatusSerializer


class ReleaseViewSet(
    RowListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Releases (immutable): read, fetch the manifest, roll back to one."""

    required_scopes = {
        "list": Scope.DEPLOYMENTS_READ,
        "retrieve": Scope.DEPLOYMENTS_READ,
        "manifest": Scope.DEPLOYMENTS_READ,
        "rollback": Scope.DEPLOYMENTS_WRITE,
        "status": Scope.DEPLOYMENTS_WRITE,
    }
    pagination_class = KeysetPagination

    @property
    def keyset_ordering(self) -> tuple[str, ...]:
        """Newest first: by id for every release, by number for one deployment's (both
        unique). By (deployment, number) a deep page made PostgreSQL merge-join its way down
        from the newest deployment (86 ms at 60,000 releases); by id it walks the primary key.
        """
        if self.request is not None and self.request.query_params.get("deployment"):
            return ("-number",)
        return ("-id",)

    def get_object(self) -> Any:
        with joins_as_written():  # one release by primary key: 10 tables (portal.sql_hints)
            return super().get_object()

    def get_renderers(self) -> list[Any]:
        if self.action in {"manifest", "hostpath_sync"}:
            return [YamlRenderer(), renderers.JSONRenderer()]
        return super().get_renderers()

    def get_queryset(self) -> QuerySet[Release]:
        releases = release_list_for_actor(Actor.from_request(self.request))
        deployment = self.request.query_params.get("deployment")
        if self.action == "list" and deployment:
            releases = releases.filter(deployment_id=parse_id(deployment, field="deployment"))
        return releases.defer(None) if self.action != "list" else releases

    def get_serializer_class(self) -> type:
        return ReleaseSerializer if self.action == "list" else ReleaseDetailSerializer

    @extend_schema(responses={(200, "text/yaml"): YAML_RESPONSE})
    def manifest(self, request: Request, pk: str) -> HttpResponse:
        """The release's rendered YAML (text/yaml)."""
        release = self.get_object()
        if not release.manifest_yaml:
            raise Http404(
                gettext_lazy("This image-mode release has no manifest yet (no app image).")
            )
        name = f"{release.deployment.service.name}-{release.deployment.environment.name}"
        return _yaml_response(release.manifest_yaml, f"{name}-r{release.number}.yaml")

    @extend_schema(request=None, responses={201: ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str | None = None) -> Response:
        """A new release copying this release's binary and runtime versions."""
        release = release_rollback(actor=Actor.from_request(request), release=self.get_object())
        body = ReleaseDetailSerializer(release_list().defer(None).get(pk=release.pk))
        return Response(body.data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReleaseStatusSerializer, responses={200: ReleaseSerializer})
    @action(detail=True, methods=["post"])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """CD reports the release deployed, healthy or failed (a plan's wave moves on it);
        409 once it was reported failed."""
        data = ReleaseStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release = release_status_report(
            release_id=self.get_object().pk,
            status=data.validated_data["status"],
            note=data.validated_data.get("note", ""),
            actor=Actor.from_request(request),
        )
        return Response(ReleaseSerializer(release_list().get(pk=release.pk)).data)
