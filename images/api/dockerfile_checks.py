"""API of the Dockerfile check: `POST /api/v1/dockerfile-checks/` (JSON, text or a file; SARIF)."""

import json
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from portal.api.errors import PayloadTooLarge
from portal.choices import Scope

from ..policy import MAX_DOCKERFILE_BYTES, DockerfileInputError
from ..services import (
    dockerfile_check,
)
from .serializers import (
    DockerfileCheckRequestSerializer,
    DockerfileCheckResultSerializer,
)

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
