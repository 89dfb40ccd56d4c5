"""What every UI view of the deployments app shares: paging, lookups that 404, error text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet, prefetch_related_objects
from django.http import Http404, HttpRequest
from rest_framework.exceptions import APIException

from portal.actors import Actor
from portal.choices import role_at_least
from portal.keyset import keyset_page
from portal.models import Team

from ..selectors import (
    BadServiceName,
    service_get,
)

PAGE_SIZES = (10, 25, 50, 100)


def _page(request: HttpRequest, items: QuerySet[Any]) -> dict[str, Any]:
    """A page of `items` and the query string that keeps the filters across pages."""
    size = _page_size(request)
    page = Paginator(items, size).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {"page": page, "query": query.urlencode(), "page_size": size, "page_sizes": PAGE_SIZES}


def _keyset(
    request: HttpRequest, items: QuerySet[Any], ordering: tuple[str, ...]
) -> dict[str, Any]:
    """`_page` for the big append-only lists: a keyset page (`portal.keyset`), no count."""
    size = _page_size(request)
    page = keyset_page(request, items, ordering, size=size)
    return {"page": page, "query": page.query, "page_size": size, "page_sizes": PAGE_SIZES}


def _page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("page_size", 25))
    except ValueError:
        size = 25
    return size if size in PAGE_SIZES else 25


def _service_or_404(
    name: str, actor: Actor | None = None, *, lookup: Callable[..., Any] = service_get
) -> Any:
    """The service `name`; with `actor`, 404 as well when the actor may not read it.
    `lookup`: `service_get` or a selector with its signature (`service_page_get`)."""
    try:
        return lookup(name, actor=actor)
    except BadServiceName as exc:
        raise Http404(str(exc)) from exc


def _reader(request: HttpRequest) -> Actor:
    """The user as an Actor, with their memberships loaded once for the whole request.

    Read views scope every list by the user's teams (`team_readable`) and ask for roles;
    with the memberships prefetched neither costs a further query.
    """
    user = request.user
    if not isinstance(user, AnonymousUser):
        prefetch_related_objects([user], "memberships")
    return Actor(user=user)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    if isinstance(exc, APIException):
        return str(exc.detail)
    return str(exc)


def _show_errors(form: forms.Form, exc: ValidationError | APIException) -> int:
    """Put a service's refusal on the form (per field when it names one); return its status."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            if field in form.fields and field not in form.errors:
                form.add_error(field, errors)
            else:
                form.add_error(None, [f"{field}: {e}" for e in errors])
    else:
        form.add_error(None, _error_text(exc))
    return getattr(exc, "status_code", 400)


def _teams_at_least(actor: Actor, minimum: str) -> list[Team]:
    """The teams in which the actor holds `minimum` or above."""
    memberships = actor.user.memberships.select_related("team").order_by("team__name")
    return [m.team for m in memberships if role_at_least(m.role, minimum)]
