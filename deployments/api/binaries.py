"""`/api/v1/services/{name}/binaries/` (list, streamed upload) and `/api/v1/binaries/`
(read, download, yank, push as an OCI artifact; scans and SBOMs in `scans`)."""

from __future__ import annotations

import base64
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from django.utils.translation import gettext, pgettext
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.pagination import KeysetPagination
from portal.api.responses import job_accepted
from portal.api.rows import RowListMixin, row_page
from portal.choices import Scope
from portal.teams import require_team_role

from ..choices import BinaryState
from ..filtersets import BinaryVersionFilterSet
from ..models import BinaryVersion
from ..selectors import binary_version_list, binary_version_list_for_actor
from ..services import binary_version_artifact_push, binary_version_upload, binary_version_yank
from ..storage import binary_storage
from ..uploads import FILE_FIELD, check_content_length, install_upload_handler
from ._common import _service_or_400
from .scans import BinaryVersionScanActions
from .serializers import ArtifactJobSerializer, BinaryUploadSerializer, BinaryVersionSerializer


class ServiceBinaryViewSet(viewsets.GenericViewSet):
    """`/services/{name}/binaries/`: list a service's versions, or upload one (streamed)."""

    required_scopes = {"list": Scope.BINARIES_READ, "create": Scope.BINARIES_WRITE}
    serializer_class = BinaryVersionSerializer
    filterset_class = BinaryVersionFilterSet
    pagination_class = KeysetPagination
    keyset_ordering = ("-created_at", "-id")

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        # Before anything can read the body (even a CSRF check), parse it with the streaming
        # handler; the handler itself refuses an oversized Content-Length.
        if request.method == "POST":
            self.upload_handler = install_upload_handler(request)
        return super().initialize_request(request, *args, **kwargs)

    def get_parsers(self) -> list[Any]:
        if self.request is not None and self.request.method == "POST":
            return [MultiPartParser()]
        return super().get_parsers()

    def get_queryset(self) -> QuerySet[BinaryVersion]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no URL kwargs
            return BinaryVersion.objects.none()
        actor = Actor.from_request(self.request)
        service = _service_or_400(self.kwargs["service_name"], actor)
        return binary_version_list_for_actor(actor, service)

    def list(self, request: Request, service_name: str) -> Response:
        """The service's binary versions, newest first (filters: arch, state, q)."""
        queryset = self.filter_queryset(self.get_queryset())
        response = row_page(self, queryset, self.get_serializer())
        if response is not None:
            return response
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": BinaryUploadSerializer},
        responses={201: BinaryVersionSerializer, 200: BinaryVersionSerializer},
    )
    def create(self, request: Request, service_name: str) -> Response:
        """Upload a binary version: 201 new, 200 same bytes re-sent, 409 other bytes."""
        service = _service_or_400(service_name)
        actor = Actor.from_request(request)
        require_team_role(
            actor=actor,
            team=service.team,
            minimum="developer",
            what=pgettext("may …", "upload its binaries"),
        )
        check_content_length(request.META)  # 411/413 before a byte of the body is read
        upload = None
        try:
            data = request.data
            if not isinstance(data, dict):  # QueryDict (a dict) for multipart bodies
                raise exceptions.ValidationError(
                    {"file": gettext("Send the upload as multipart/form-data.")}
                )
            upload = request.FILES.get(FILE_FIELD)
            if (
                upload is None
                and getattr(self, "upload_handler", None) is not None
                and (self.upload_handler.interrupted)
            ):
                raise exceptions.ValidationError(
                    {
                        "file": gettext(
                            "The upload ended before the file was complete (truncated request "
                            "body). Nothing was stored."
                        )
                    }
                )
            binary, created = binary_version_upload(
                actor=actor,
                service=service,
                upload=upload,
                version=data.get("version", ""),
                arch=data.get("arch", ""),
                sha256=data.get("sha256", ""),
                commit=data.get("commit", ""),
                build_url=data.get("build_url", ""),
                artifact_ref=data.get("artifact_ref", ""),
                built_in=data.get("built_in", ""),
            )
        finally:
            if upload is not None:
                upload.close()
        body = BinaryVersionSerializer(binary_version_list().get(pk=binary.pk))
        response = Response(body.data, status=status.HTTP_201_CREATED if created else 200)
        response["Location"] = f"/api/v1/binaries/{binary.pk}/"
        return response


class BinaryVersionViewSet(
    BinaryVersionScanActions,
    RowListMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Binary versions of every service: read, download, yank, push as an OCI artifact."""

    required_scopes = {
        "list": Scope.BINARIES_READ,
        "retrieve": Scope.BINARIES_READ,
        "download": Scope.BINARIES_READ,
        "yank": Scope.BINARIES_WRITE,
        "scan": Scope.BINARIES_WRITE,
        "sbom": Scope.BINARIES_READ,
        "artifact": Scope.BINARIES_WRITE,
    }
    # The one action an environment's fetch token may call (portal.auth refuses it elsewhere).
    fetch_token_actions = frozenset({"download"})
    serializer_class = BinaryVersionSerializer
    filterset_class = BinaryVersionFilterSet
    pagination_class = KeysetPagination
    keyset_ordering = ("-created_at", "-id")

    def get_queryset(self) -> QuerySet[BinaryVersion]:
        return binary_version_list_for_actor(Actor.from_request(self.request))

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], filterset_class=None)
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        """The file, streamed, with its sha256 in `X-Checksum-Sha256` and `Digest`."""
        binary = self.get_object()
        if binary.state == BinaryState.PURGED:
            raise exceptions.NotFound(
                gettext("%(binary)s was purged by retention; its file is gone.")
                % {"binary": binary}
            )
        try:
            handle = binary_storage().open(binary.file, "rb")
        except FileNotFoundError as exc:
            raise exceptions.NotFound(
                gettext("The file of %(binary)s is missing from storage.") % {"binary": binary}
            ) from exc
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=binary.filename,
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(binary.size)
        response["X-Checksum-Sha256"] = binary.sha256
        response["Digest"] = "sha-256=" + base64.b64encode(bytes.fromhex(binary.sha256)).decode()
        response["ETag"] = f'"{binary.sha256}"'
        return response

    @action(detail=True, methods=["post"], filterset_class=None)
    def yank(self, request: Request, pk: str | None = None) -> Response:
        """Hide the version from new releases (409 if it is not active)."""
        binary = binary_version_yank(
            actor=Actor.from_request(request), binary_version=self.get_object()
        )
        return Response(BinaryVersionSerializer(binary_version_list().get(pk=binary.pk)).data)

    @extend_schema(request=None, responses={202: ArtifactJobSerializer})
    @action(detail=True, methods=["post"], filterset_class=None)
    def artifact(self, request: Request, pk: str | None = None) -> Response:
        """Push the binary to the registry as an OCI image for image volumes (202 + the job).

        The job records `artifact_ref` (`<registry>/binaries/<service>@sha256:…`) when it
        succeeds; poll `Location`. 409 for a yanked or purged version; while a push of this
        version is queued or running, the same job is returned.
        """
        job, _ = binary_version_artifact_push(
            actor=Actor.from_request(request), binary_version=self.get_object()
        )
        return job_accepted(request, job)
