"""API views of the images app."""

import json
import re
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db.models import QuerySet
from django.http import Http404, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from portal.actors import Actor
from portal.api.errors import PayloadTooLarge
from portal.api.params import parse_id
from portal.api.responses import job_accepted
from portal.api.rows import RowListMixin
from portal.choices import Scope

from ..choices import ImageKind
from ..filtersets import BaseImageFilterSet, ImageRequestFilterSet
from ..models import BaseImage, ImageRequest, ImageVersion
from ..policy import MAX_DOCKERFILE_BYTES, DockerfileInputError
from ..references import ReferenceError
from ..selectors import (
    base_image_detail,
    base_image_list,
    base_image_resolve,
    compatibility_matrix,
    image_request_list_for_actor,
)
from ..services import (
    GateBlocked,
    dockerfile_check,
    image_request_approve,
    image_request_comment,
    image_request_create,
    image_request_reject,
    image_request_request_changes,
    image_request_submit,
    image_request_update,
    image_version_gate,
    image_version_publish,
)
from .curation import BaseImageCurationActions, ImageVersionCurationActions
from .findings import ImageVersionFindingActions
from .scans import ImageVersionScanActions
from .serializers import (
    BaseImageDetailSerializer,
    BaseImageSerializer,
    DockerfileCheckRequestSerializer,
    DockerfileCheckResultSerializer,
    ImageRequestCreateSerializer,
    ImageRequestSerializer,
    ImageRequestTextSerializer,
    ImageRequestUpdateSerializer,
    ImageVersionDetailSerializer,
    ResolveSerializer,
)


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


# --- POST /api/v1/dockerfile-checks/ -------------------------------------------------------------

# The Dockerfile itself is limited to 256 KiB (413 from the engine). The request body may be
# larger by the cost of its envelope: JSON escapes (`\n`, `\"`, and `\uXXXX` for non-ASCII text
# such as the standard's Chinese comments, 2x for CJK) and multipart headers. Bodies over this
# are refused with 413 from Content-Length (or the bytes actually read) before any parsing.
MAX_CHECK_BODY_BYTES = 2 * MAX_DOCKERFILE_BYTES + 16 * 1024
_JSON_KEYS = frozenset({"dockerfile", "service", "purpose"})
_TEXT_TYPES = ("text/plain", "application/octet-stream", "text/x-dockerfile")


class SarifRenderer(JSONRenderer):
    """SARIF 2.1.0 logs (`?format=sarif` or `Accept: application/sarif+json`)."""

    media_type = "application/sarif+json"
    format = "sarif"


def _too_large(size: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is {size} bytes; the limit is {MAX_CHECK_BODY_BYTES} bytes (a "
        f"Dockerfile may have at most {MAX_DOCKERFILE_BYTES} bytes, 256 KiB)."
    )


def _optional_text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise exceptions.ValidationError(
            {
                key: gettext("Must be a string or null, not %(name)s.")
                % {"name": type(value).__name__}
            }
        )
    return value


class DockerfileCheckViewSet(viewsets.ViewSet):
    """Check a Dockerfile against the base-image standard (and hadolint).

    Send JSON `{"dockerfile": "...", "service": "<name>", "purpose": "service"}`, a raw
    `text/plain` body (`?service=&purpose=` in the query), or a multipart upload with a `file`
    field. The verdict is in the body; the status is 200 for pass, warn and fail alike.
    """

    required_scopes = {"*": Scope.DOCKERFILE_CHECK}
    renderer_classes = [JSONRenderer, SarifRenderer]
    parser_classes: list[type] = []

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        """`?format=json|sarif` wins over the Accept header; any other format is a 400.

        (DRF would answer 406 to `?format=sarif` with `Accept: application/json`, which CI
        clients send, and 404 to an unknown format.)
        """
        wanted = request.query_params.get(api_settings.URL_FORMAT_OVERRIDE)
        if wanted:
            for renderer in self.get_renderers():
                if renderer.format == wanted:
                    return renderer, renderer.media_type
            if not force:
                raise exceptions.ValidationError(
                    {"format": gettext("Use ?format=json (the default) or ?format=sarif.")}
                )
        try:
            return super().perform_content_negotiation(request, force=force)
        except Http404 as exc:  # pragma: no cover - only an unknown format raises this
            raise exceptions.ValidationError(
                {"format": gettext("Use ?format=json (the default) or ?format=sarif.")}
            ) from exc

    def _content_length(self, request: Request) -> int:
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError as exc:
            raise exceptions.ParseError(
                gettext_lazy("The Content-Length header is not a number.")
            ) from exc
        if length > MAX_CHECK_BODY_BYTES:
            raise _too_large(length)
        return length

    def _body(self, request: Request) -> bytes:
        body = request._request.read(MAX_CHECK_BODY_BYTES + 1)
        if len(body) > MAX_CHECK_BODY_BYTES:
            raise _too_large(len(body))
        return body

    def _multipart(
        self, request: Request, service: str | None, purpose: str, filename: str
    ) -> tuple[bytes | str, str | None, str, str]:
        try:
            upload = request._request.FILES.get("file")
            form = request._request.POST
        except RequestDataTooBig as exc:
            raise _too_large(MAX_CHECK_BODY_BYTES + 1) from exc
        except (MultiPartParserError, SuspiciousOperation, ValueError) as exc:
            raise exceptions.ParseError(
                gettext("The multipart body cannot be read: %(exc)s") % {"exc": exc}
            ) from exc
        service = form.get("service") or service
        purpose = form.get("purpose") or purpose
        if upload is not None:
            if upload.size is not None and upload.size > MAX_DOCKERFILE_BYTES:
                raise PayloadTooLarge(
                    gettext(
                        "The Dockerfile is %(size)s bytes; the limit is %(limit)s bytes (256 KiB)."
                    )
                    % {"size": upload.size, "limit": MAX_DOCKERFILE_BYTES}
                )
            name = request.query_params.get("filename") or upload.name or filename
            return upload.read(MAX_DOCKERFILE_BYTES + 1), service, purpose, name
        if "dockerfile" in form:
            return form["dockerfile"], service, purpose, filename
        raise exceptions.ValidationError(
            {"file": gettext("Upload the Dockerfile in a multipart field named 'file'.")}
        )

    def _input(self, request: Request) -> tuple[bytes | str, str | None, str, str]:
        """(dockerfile, service, purpose, filename) from whichever body type was sent."""
        query = request.query_params
        service = query.get("service") or None
        purpose = query.get("purpose") or "service"
        filename = query.get("filename") or "Dockerfile"
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        self._content_length(request)
        if content_type == "multipart/form-data":
            return self._multipart(request, service, purpose, filename)
        body = self._body(request)
        if content_type in ("", *_TEXT_TYPES):
            return body, service, purpose, filename
        if content_type == "application/x-www-form-urlencoded":
            form = QueryDict(body, encoding="utf-8")
            if "dockerfile" not in form:
                raise exceptions.ParseError(
                    gettext(
                        "A form body needs a 'dockerfile' field. To send the Dockerfile itself, "
                        "set Content-Type: text/plain (curl --data-binary sends a form by "
                        "default)."
                    )
                )
            service = form.get("service") or service
            purpose = form.get("purpose") or purpose
            return form["dockerfile"], service, purpose, filename
        if content_type != "application/json":
            raise exceptions.UnsupportedMediaType(
                content_type,
                gettext(
                    "Unsupported Content-Type %(content_type)r: send application/json "
                    '({"dockerfile": ...}), text/plain (the Dockerfile itself) or '
                    "multipart/form-data (a 'file' field)."
                )
                % {"content_type": content_type},
            )
        if not body.strip():
            raise exceptions.ParseError(
                gettext('The request body is empty; send {"dockerfile": "<Dockerfile text>"}.')
            )
        try:
            data = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(
                gettext("The JSON body is not UTF-8 (invalid byte at offset %(start)s).")
                % {"start": exc.start}
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(
                gettext("The body is not valid JSON: %(exc)s.") % {"exc": exc}
            ) from exc
        if not isinstance(data, dict):
            raise exceptions.ParseError(
                gettext('The JSON body must be an object: {"dockerfile": "...", "service": "..."}.')
            )
        unknown = sorted(set(data) - _JSON_KEYS)
        if unknown:
            raise exceptions.ValidationError(
                {
                    "non_field_errors": gettext(
                        "Unknown key(s) %(value)s; the body takes dockerfile, service and purpose."
                    )
                    % {"value": ", ".join(map(repr, unknown))}
                }
            )
        if "dockerfile" not in data:
            raise exceptions.ValidationError(
                {"dockerfile": gettext_lazy("This field is required.")}
            )
        if not isinstance(data["dockerfile"], str):
            raise exceptions.ValidationError(
                {
                    "dockerfile": gettext("Must be a string, not %(name)s.")
                    % {"name": type(data["dockerfile"]).__name__}
                }
            )
        service = _optional_text(data.get("service"), "service") or service
        purpose = _optional_text(data.get("purpose"), "purpose") or purpose
        return data["dockerfile"], service, purpose, filename

    @extend_schema(
        request={
            "application/json": DockerfileCheckRequestSerializer,
            "text/plain": OpenApiTypes.STR,
            "multipart/form-data": OpenApiTypes.OBJECT,
        },
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "sarif"]),
            OpenApiParameter("service", OpenApiTypes.STR, description="for raw bodies"),
            OpenApiParameter("purpose", OpenApiTypes.STR, description="for raw bodies"),
            OpenApiParameter("filename", OpenApiTypes.STR, description="the SARIF artifact URI"),
        ],
        # 200 for every verdict (not 201: nothing is created); SARIF 2.1.0 with ?format=sarif.
        responses={
            (200, "application/json"): DockerfileCheckResultSerializer,
            (200, "application/sarif+json"): OpenApiTypes.OBJECT,
        },
    )
    def create(self, request: Request) -> Response:
        """Check a Dockerfile; 200 with the verdict, findings and stages (or SARIF)."""
        text, service, purpose, filename = self._input(request)
        try:
            check = dockerfile_check(text=text, service_name=service, purpose=purpose)
        except DockerfileInputError as exc:
            if exc.status == 413:
                raise PayloadTooLarge(exc.message) from exc
            raise exceptions.ValidationError({"detail": exc.message}, code="invalid") from exc
        if getattr(request.accepted_renderer, "format", "json") == "sarif":
            help_base = request.build_absolute_uri(reverse("images:rule-reference"))
            return Response(check.to_sarif(filename=filename[:200], help_base=help_base))
        return Response(check.to_dict())


# --- /api/v1/image-requests/ and /api/v1/image-versions/ ----------------------------------------


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
