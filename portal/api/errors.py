"""One error shape for the whole API: `{"detail": …, "code": …}` with the right status."""

from __future__ import annotations

import errno
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousMultipartForm,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.jobs import IllegalTransition


class Conflict(exceptions.APIException):
    """409: a duplicate, or a state that does not allow the operation."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    """413: the body is over the limit."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class InsufficientStorage(exceptions.APIException):
    """507: the server has no room to store what was sent (its disk or quota is full)."""

    status_code = 507
    default_detail = _(
        "The portal's storage is full; nothing was stored. Try again later, and tell the "
        "platform team."
    )
    default_code = "insufficient_storage"


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` is the OS saying there is no space (ENOSPC) or quota (EDQUOT) left."""
    return isinstance(exc, OSError) and exc.errno in {errno.ENOSPC, errno.EDQUOT}


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map Django and domain errors onto DRF's, then shape every error the same way."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, IllegalTransition):
        exc = Conflict(str(exc), code="illegal_transition")
    elif isinstance(exc, DjangoPermissionDenied):  # services raise Django's; keep its message
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(str(exc) or None)
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent | SuspiciousMultipartForm):
        # Django's own input limits (too many fields or files in a form body): a client error,
        # answered like every other one instead of Django's HTML 400 page.
        exc = exceptions.ParseError(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    # Errors are JSON whatever the operation renders on success (YAML manifests, SARIF).
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    data = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    if isinstance(data, dict) and set(data) == {"detail"}:
        body: dict[str, Any] = {"detail": str(data["detail"]), "code": code}
    else:
        body = {"detail": _flatten(data), "code": "invalid", "errors": data}
    response.data = body
    return response
