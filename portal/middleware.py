"""Middleware of the portal: a request id for every request (and the audit rows it writes),
and the session user's memberships read once a request."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import get_user
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from .compiled import compiled_rows
from .models import Membership

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


# Membership's columns in the model's order (`Model.from_db` reads a whole row so).
_MEMBERSHIP_COLUMNS = ("id", "team_id", "user_id", "role")


@compiled_rows
def _membership_rows(user_id: int) -> QuerySet[Any]:
    return Membership.objects.filter(user_id=user_id).values(*_MEMBERSHIP_COLUMNS)


def _user_with_memberships(request: HttpRequest) -> object:
    user = get_user(request)  # cached on the request by the auth middleware's own helper
    prefetched = getattr(user, "_prefetched_objects_cache", {})
    if user.is_authenticated and "memberships" not in prefetched:
        # What `prefetch_related_objects([user], "memberships")` leaves, from SQL compiled
        # once (`portal.compiled`): that prefetch was 0.3 ms of every page, mostly compiling.
        memberships = user.memberships.all()
        memberships._result_cache = [
            Membership.from_db(memberships.db, _MEMBERSHIP_COLUMNS, tuple(row.values()))
            for row in _membership_rows(user.pk)
        ]
        # Django's own prefetch sets these two (`prefetch_one_level`); the stubs omit them.
        memberships._prefetch_done = True  # type: ignore[attr-defined]
        user._prefetched_objects_cache = {**prefetched, "memberships": memberships}  # type: ignore[attr-defined]
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
