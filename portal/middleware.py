"""Middleware of the portal: a request id for every request (and the audit rows it writes),
and the session user's memberships read once a request."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable

from django.contrib.auth.middleware import get_user
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")


def current_request_id() -> str:
    """The id of the request being served, or "" outside a request."""
    return _request_id.get()


class RequestIdMiddleware:
    """Take a sane `X-Request-ID` from the client or make one; echo it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


def _user_with_memberships(request: HttpRequest) -> object:
    user = get_user(request)  # cached on the request by the auth middleware's own helper
    if user.is_authenticated and "memberships" not in getattr(
        user, "_prefetched_objects_cache", {}
    ):
        prefetch_related_objects([user], "memberships")
    return user


class MembershipsMiddleware:
    """The session's user arrives with its memberships (one prefetch when first touched).

    Every page asks the user's roles at least twice (the navigation's admin flag, the view's
    own check), and `Actor` reads `user.memberships.all()` for each: a query a question
    before, one a request now. A token's request never touches `request.user`: it pays
    nothing. After AuthenticationMiddleware, whose lazy user this replaces."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.user = SimpleLazyObject(lambda: _user_with_memberships(request))  # type: ignore[assignment]
        return self.get_response(request)
