"""Pagination shared by every API list: page numbers for the small lists, a keyset cursor
for the big append-only ones (releases, jobs, binaries; see `portal.keyset`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from ..keyset import CURSOR_PARAM, CursorError, KeysetPage, keyset_paginate


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200 a page)."""

    page_size_query_param = "page_size"
    max_page_size = 200


class KeysetPagination(BasePagination):
    """`?cursor=…&page_size=M`: `{"next", "previous", "results"}`, no `count`.

    The shape of the page-number lists without their `count` (a COUNT(*) of the whole table
    on every page): clients that follow `next` work unchanged. A `?page=` is refused with a
    400 that says to follow `next`, so a deep-page client is not silently served page 1.
    The view sets `keyset_ordering` (its last field unique); default newest first by id.
    """

    page_size = 25
    max_page_size = 200
    ordering: Sequence[str] = ("-created_at", "-id")

    def __init__(self) -> None:
        self.page: KeysetPage | None = None
        self.request: Request | None = None

    def _size(self, request: Request) -> int:
        raw = request.query_params.get("page_size")
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError(
                {"page_size": gettext("page_size must be a whole number.")}
            ) from None
        if size < 1:
            raise ValidationError({"page_size": gettext("page_size must be at least 1.")})
        return min(size, self.max_page_size)

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        if "page" in request.query_params:
            raise ValidationError(
                {
                    "page": gettext(
                        "This list is paged by cursor, not page number: follow the `next` and "
                        "`previous` links (`?cursor=…`)."
                    )
                }
            )
        if not isinstance(queryset, QuerySet):
            raise TypeError("KeysetPagination pages a QuerySet (it filters by the cursor).")
        ordering = getattr(view, "keyset_ordering", None) or self.ordering
        self.request = request
        try:
            self.page = keyset_paginate(
                queryset,
                ordering,
                size=self._size(request),
                cursor=request.query_params.get(CURSOR_PARAM) or None,
            )
        except CursorError as exc:
            raise ValidationError({CURSOR_PARAM: str(exc)}) from exc
        return self.page.object_list

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None or self.request is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), CURSOR_PARAM)
        return replace_query_param(url, CURSOR_PARAM, cursor)

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None  # noqa: S101 - paginate_queryset ran first (DRF's order)
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": CURSOR_PARAM,
                "required": False,
                "in": "query",
                "description": "The cursor of the `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "description": f"Rows a page (1-{self.max_page_size}).",
                "schema": {"type": "integer"},
            },
        ]
