"""Pagination shared by every API list: page numbers for the small lists, a keyset cursor
for the big append-only ones (releases, jobs, binaries; see `portal.keyset`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.core.paginator import EmptyPage, InvalidPage, Page, PageNotAnInteger
from django.core.paginator import Paginator as DjangoPaginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property
from django.utils.translation import gettext, gettext_lazy
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from ..keyset import CURSOR_PARAM, CursorError, KeysetPage, keyset_paginate

# A numbered list that PostgreSQL's planner expects to hold more rows than this is counted
# by that estimate (`count_estimated: true`): COUNT(*) reads every row the list's filter
# keeps, 1.5 ms of the deployments list's 30,000 a request and ten times that at 300,000.
ESTIMATE_ABOVE = 5_000

# The lists (by their SQL) last counted above `ESTIMATE_ABOVE`, per process: only they are
# planned first; every other list is counted at once, in the one query it always took.
_BIG: dict[tuple[str, str, tuple[str, ...]], bool] = {}
_BIG_KEPT = 4096


def planned_rows(db: str, sql: str, params: Any) -> int | None:
    """How many rows PostgreSQL's planner expects the query to give (its EXPLAIN, no
    execution), or None on another database."""
    if connections[db].vendor != "postgresql":
        return None
    with connections[db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def list_count(queryset: QuerySet[Any]) -> tuple[int, bool]:
    """`queryset`'s count and whether it is the planner's estimate: exact, unless the same
    list counted more than `ESTIMATE_ABOVE` rows before in this process and the planner
    still expects that many (then no row is read)."""
    if connections[queryset.db].vendor != "postgresql":
        return queryset.count(), False
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    key = (queryset.db, sql, tuple(map(repr, params)))
    if _BIG.get(key):
        planned = planned_rows(queryset.db, sql, params)
        if planned is not None and planned > ESTIMATE_ABOVE:
            return planned, True
    count = queryset.count()
    if len(_BIG) >= _BIG_KEPT:
        _BIG.clear()
    _BIG[key] = count > ESTIMATE_ABOVE
    return count, False


def page_size_of(request: Request, default: int, maximum: int) -> int:
    """`?page_size=`: a whole number ≥ 1 (a 400 otherwise), at most `maximum`."""
    raw = request.query_params.get("page_size")
    if raw is None:
        return default
    try:
        size = int(raw)
    except ValueError:
        raise ValidationError({"page_size": gettext("page_size must be a whole number.")}) from None
    if size < 1:
        raise ValidationError({"page_size": gettext("page_size must be at least 1.")})
    return min(size, maximum)


class LookaheadPaginator(DjangoPaginator):
    """Django's paginator whose page reads one row more than it shows to know whether another
    follows, so that no page needs the count. The count (asked for by the response alone)
    of a list that ends on the page read is what the page says; else `list_count`'s: exact,
    or the planner's estimate for a list above `ESTIMATE_ABOVE` rows."""

    estimated = False

    @cached_property
    def count(self) -> int:
        source = getattr(self.object_list, "counted", self.object_list)
        if isinstance(source, QuerySet):
            count, self.estimated = list_count(source)
            return count
        return int(super().count)

    def page(self, number: Any) -> Page[Any]:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(self.error_messages["no_results"])
        more = len(rows) > self.per_page
        if not more:  # the last page: the rows before it and its own are all there are
            self.__dict__["count"] = bottom + len(rows)
        return LookaheadPage(rows[: self.per_page], number, self, more)

    def validate_number(self, number: Any) -> int:
        """A whole number ≥ 1; whether that page has rows, `page` finds out (the count, which
        Django's paginator checks first, may be an estimate)."""
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number


class LookaheadPage(Page[Any]):
    """A page that knows from its rows whether another follows."""

    def __init__(self, rows: list[Any], number: int, paginator: Any, more: bool) -> None:
        super().__init__(rows, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more

    def next_page_number(self) -> int:
        return self.number + 1


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200 a page): `{"count", "count_estimated", "next",
    "previous", "results"}`. `next` is there when a row follows the page (it reads one row
    more), whatever the count says; the count is exact up to `ESTIMATE_ABOVE` rows and the
    planner's estimate above it (`count_estimated`)."""

    page_size_query_param = "page_size"
    max_page_size = 200
    django_paginator_class = LookaheadPaginator
    # Lazy, as DRF's own: translated when a request formats it (the stubs want a str).
    invalid_page_message = gettext_lazy(  # type: ignore[assignment]
        "Invalid page {page_number}: {message}. Pages are numbered from 1; follow `next` "
        "from the first page until it is null."
    )

    def get_page_size(self, request: Request) -> int:
        """Not a page size (`abc`, `0`) is a 400, as on the keyset lists: DRF served the
        default page instead, and a client's typo went unnoticed."""
        return page_size_of(request, int(self.page_size or 25), self.max_page_size)

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        """DRF's, but for its page controls' `num_pages`, which it asks on every request
        (the count before the page): only the browsable API's HTML shows them."""
        self.request = request
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        page_number = request.query_params.get(self.page_query_param) or 1
        if page_number in self.last_page_strings:
            page_number = paginator.num_pages
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as exc:
            msg = self.invalid_page_message.format(page_number=page_number, message=str(exc))
            raise NotFound(msg) from exc
        if self.template is not None and getattr(request, "accepted_media_type", "") == "text/html":
            self.display_page_controls = paginator.num_pages > 1  # the browsable API's links
        return list(self.page)

    def get_paginated_response(self, data: Any) -> Response:
        assert self.page is not None  # noqa: S101 - paginate_queryset ran first (DRF's order)
        paginator = self.page.paginator
        count = paginator.count
        return Response(
            {
                "count": count,
                "count_estimated": bool(getattr(paginator, "estimated", False)),
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        shape = super().get_paginated_response_schema(schema)
        shape["properties"]["count_estimated"] = {
            "type": "boolean",
            "description": f"`count` is the planner's estimate (above {ESTIMATE_ABOVE} rows).",
        }
        shape["required"] = ["count", "count_estimated", "results"]
        return shape


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
        return page_size_of(request, self.page_size, self.max_page_size)

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
