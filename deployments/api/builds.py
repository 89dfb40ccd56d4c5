"""`/api/v1/services/{name}/builds/`: compile a source archive in an approved build image."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.api.errors import PayloadTooLarge
from portal.api.serializers import JobSerializer
from portal.choices import Scope

from ..models import SourceBuild
from ..selectors import BadServiceName, service_get
from ..services import source_build_start
from ..uploads import MULTIPART_OVERHEAD

ARCHIVE_FIELD = "archive"


class SourceBuildSerializer(serializers.ModelSerializer):
    """A source build as listed."""

    service = serializers.CharField(source="service.name", read_only=True)
    build_image = serializers.CharField(source="build_version.pull_ref", read_only=True)
    build_image_version = serializers.IntegerField(source="build_version_id", read_only=True)
    job = serializers.IntegerField(source="job_id", read_only=True, allow_null=True)
    binary_version = serializers.IntegerField(
        source="binary_version_id", read_only=True, allow_null=True
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = SourceBuild
        fields = [
            "id",
            "url",
            "service",
            "build_image_version",
            "build_image",
            "version",
            "arch",
            "source_name",
            "source_sha256",
            "source_size",
            "command",
            "output_path",
            "cache_key",
            "state",
            "job",
            "binary_version",
            "error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_url(self, obj: SourceBuild) -> str:
        return f"/api/v1/services/{obj.service.name}/builds/{obj.pk}/"


class SourceBuildDetailSerializer(SourceBuildSerializer):
    """One source build, with its SLSA v1 provenance (an in-toto Statement)."""

    class Meta(SourceBuildSerializer.Meta):
        fields = [*SourceBuildSerializer.Meta.fields, "provenance"]
        read_only_fields = fields


class SourceBuildRequestSerializer(serializers.Serializer):
    """The multipart form of a build request (documentation; the view reads the parts)."""

    archive = serializers.FileField(help_text="The source, a .tar.gz.")
    build_image_version = serializers.IntegerField(help_text="An approved build image version.")
    command = serializers.CharField(
        help_text='A JSON list (["make", "-C", "/src"]) or a shell string (/bin/sh -c).'
    )
    output_path = serializers.CharField(help_text="The output's path under /out, e.g. app.")
    version = serializers.CharField()
    arch = serializers.CharField()


class SourceBuildStartedSerializer(serializers.Serializer):
    """Answer of a build request: the build, its job, and whether it was cached."""

    build = SourceBuildDetailSerializer()
    job = JobSerializer(allow_null=True)
    cached = serializers.BooleanField()


def _service(name: str, actor: Actor | None = None) -> Any:
    try:
        return service_get(name, actor=actor)
    except BadServiceName as exc:
        raise exceptions.ValidationError({"service": str(exc)}) from exc


def _command(raw: Any) -> Any:
    """A JSON list (or JSON string) as sent, else the text itself (a shell command)."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text.startswith(("[", '"')):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise exceptions.ValidationError(
                {
                    "command": gettext(
                        "The command looks like JSON but is not valid JSON: %(exc)s."
                    )
                    % {"exc": exc}
                }
            ) from exc
    return raw


def _check_length(meta: dict[str, Any]) -> None:
    limit = int(settings.PORTAL_SOURCE_MAX_BYTES)
    raw = meta.get("CONTENT_LENGTH") or ""
    try:
        length = int(raw)
    except ValueError:
        return  # no usable length: the archive's own size is checked once it is read
    if length > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(
            gettext(
                "The source archive is larger than the limit of %(limit)s bytes "
                "(PORTAL_SOURCE_MAX_BYTES)."
            )
            % {"limit": limit}
        )


class ServiceBuildViewSet(viewsets.GenericViewSet):
    """A service's source builds: list, one with its provenance, start one (multipart)."""

    required_scopes = {
        "list": Scope.BINARIES_READ,
        "retrieve": Scope.BINARIES_READ,
        "create": Scope.BINARIES_WRITE,
        "*": Scope.BINARIES_READ,  # other methods: 405 for those who may read
    }
    serializer_class = SourceBuildSerializer

    def get_parsers(self) -> list[Any]:
        if self.request is not None and self.request.method == "POST":
            return [MultiPartParser()]
        return super().get_parsers()

    def get_queryset(self) -> QuerySet[SourceBuild]:
        if getattr(self, "swagger_fake_view", False):
            return SourceBuild.objects.none()
        service = _service(self.kwargs["service_name"], Actor.from_request(self.request))
        return SourceBuild.objects.select_related(
            "service", "build_version__base_image", "build_version__registry"
        ).filter(service=service)

    def list(self, request: Request, service_name: str) -> Response:
        """The service's source builds, newest first."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(responses={200: SourceBuildDetailSerializer})
    def retrieve(self, request: Request, service_name: str, pk: str) -> Response:
        """One source build with its SLSA v1 provenance (empty until it succeeded)."""
        if not str(pk).isdigit():
            raise exceptions.NotFound(gettext_lazy("No such build."))
        build = self.get_queryset().filter(pk=int(pk)).first()
        if build is None:
            raise exceptions.NotFound(
                gettext("No build #%(pk)s of %(service_name)s.")
                % {"pk": pk, "service_name": service_name}
            )
        return Response(SourceBuildDetailSerializer(build).data)

    @extend_schema(
        request={"multipart/form-data": SourceBuildRequestSerializer},
        responses={202: SourceBuildStartedSerializer, 200: SourceBuildStartedSerializer},
    )
    def create(self, request: Request, service_name: str) -> Response:
        """Compile a source archive: 202 with the new build and its job; 200 with the
        existing build (`cached: true`) when the same inputs were built before."""
        _service(service_name)
        _check_length(request.META)
        data = request.data
        if not hasattr(data, "get"):
            raise exceptions.ValidationError(
                {"archive": gettext_lazy("Send the build as multipart/form-data.")}
            )
        archive = request.FILES.get(ARCHIVE_FIELD)
        try:
            build, created = source_build_start(
                actor=Actor.from_request(request),
                service_name=service_name,
                build_version_id=data.get("build_image_version", ""),
                archive=archive,
                command=_command(data.get("command", "")),
                output_path=data.get("output_path", ""),
                version=data.get("version", ""),
                arch=data.get("arch", ""),
            )
        finally:
            if archive is not None:
                archive.close()
        build = (
            SourceBuild.objects.select_related(
                "service", "build_version__base_image", "build_version__registry", "job"
            )
            .filter(pk=build.pk)
            .get()
        )
        body = {
            "build": SourceBuildDetailSerializer(build).data,
            "job": JobSerializer(build.job, context={"request": request}).data
            if build.job is not None
            else None,
            "cached": not created,
        }
        code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        response = Response(body, status=code)
        response["Location"] = f"/api/v1/services/{build.service.name}/builds/{build.pk}/"
        return response
