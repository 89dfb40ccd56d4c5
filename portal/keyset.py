"""Keyset (cursor) pages of the big append-only lists: releases, jobs, audit, binaries.

An OFFSET page reads and throws away every row before it, and a page count needs a COUNT(*)
of the whole (filtered) table: both grow with the table. A keyset page asks for the rows
after the last one shown (`WHERE key < last ORDER BY key LIMIT n`), which an index on the
ordering answers by walking `n` entries, at any depth. There is no total and no page number:
a page links to the next (older) and the previous (newer) page by an opaque cursor.

The cursor is URL-safe base64 of JSON `{"k": [values of the ordering fields], "r": reverse}`;
it is not signed (it only positions a read the caller may make anyway) but it is validated:
a cursor that does not decode, or whose values do not fit the fields, is a `CursorError`.
The API (`portal.api.pagination.KeysetPagination`) and the UI (`keyset_page`) share it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, Lookup, Model, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.http import HttpRequest
from django.utils.translation import gettext as _

CURSOR_PARAM = "cursor"
MAX_CURSOR_CHARS = 1000


class CursorError(ValueError):
    """A cursor that is not one this portal made (bad base64, JSON, or key values)."""


def _field_name(order: str) -> str:
    return order.lstrip("-")


def _value(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):  # a `values()` row (`portal.api.rows`)
        value = obj[name]
    else:
        value = obj
        for part in name.split("__"):
            value = getattr(value, part)
    if isinstance(value, Model):
        value = value.pk
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def encode_cursor(obj: Any, ordering: Sequence[str], *, reverse: bool) -> str:
    """The cursor positioned at `obj` (after it, or before it when `reverse`)."""
    payload = {"k": [_value(obj, _field_name(o)) for o in ordering], "r": reverse}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, ordering: Sequence[str]) -> tuple[list[Any], bool]:
    """The key values and the direction of a cursor.

    Raises:
        CursorError: the text is not a cursor of this ordering.
    """
    if len(text) > MAX_CURSOR_CHARS:
        raise CursorError(_("The cursor is too long; use the next/previous links as given."))
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CursorError(
            _("The cursor is not valid; use the next/previous links as given.")
        ) from exc
    keys = payload.get("k") if isinstance(payload, dict) else None
    reverse = payload.get("r") if isinstance(payload, dict) else None
    if (
        not isinstance(keys, list)
        or len(keys) != len(ordering)
        or not isinstance(reverse, bool)
        or not all(isinstance(k, str | int) and not isinstance(k, bool) for k in keys)
    ):
        raise CursorError(_("The cursor is not valid; use the next/previous links as given."))
    return keys, reverse


def _after(ordering: Sequence[str], keys: Sequence[Any], *, reverse: bool) -> Q | Lookup:
    """Rows strictly after `keys` in `ordering` (before them when `reverse`).

    When every field runs one way: the row comparison `(a, b) < (x, y)`, which PostgreSQL's
    index of the ordering answers from the cursor on, however many rows share `a` (the
    findings' severity: thousands); SQLite gets Django's expansion of it. Mixed directions:
    `a <= x AND (a < x OR (a = x AND b < y) …)`, whose leading bound lets the index start at
    the cursor's `a`.
    """
    directions = {order.startswith("-") != reverse for order in ordering}
    if len(directions) == 1:
        row = Tuple(*(F(_field_name(o)) for o in ordering))
        below = directions.pop()
        return (TupleLessThan if below else TupleGreaterThan)(row, tuple(keys))
    lookups = []
    for order in ordering:
        descending = order.startswith("-") != reverse
        lookups.append((_field_name(order), "lt" if descending else "gt"))
    first, first_op = lookups[0]
    bound = Q(**{f"{first}__{'lte' if first_op == 'lt' else 'gte'}": keys[0]})
    either = Q()
    equal: dict[str, Any] = {}
    for (name, op), key in zip(lookups, keys, strict=True):
        either |= Q(**equal, **{f"{name}__{op}": key})
        equal[name] = key
    return bound & either


@dataclass
class KeysetPage:
    """One keyset page: its rows and the cursors of the pages next to it (None: none)."""

    object_list: list[Any]
    next_cursor: str | None = None
    previous_cursor: str | None = None
    query: str = ""
    is_keyset: bool = field(default=True, init=False)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    def __iter__(self) -> Any:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def keyset_paginate(
    queryset: QuerySet[Any], ordering: Sequence[str], *, size: int, cursor: str | None
) -> KeysetPage:
    """The page of `queryset` (ordered by `ordering`, whose last field must be unique) at
    `cursor` (None: the first page), in one query of `size + 1` rows.

    Raises:
        CursorError: the cursor is malformed or its values do not fit the fields.
    """
    reverse = False
    rows = queryset.order_by(*ordering)
    if cursor:
        keys, reverse = decode_cursor(cursor, ordering)
        if reverse:
            flipped = [o[1:] if o.startswith("-") else f"-{o}" for o in ordering]
            rows = queryset.order_by(*flipped)
        try:
            rows = rows.filter(_after(ordering, keys, reverse=reverse))
        except (ValidationError, ValueError, TypeError) as exc:
            raise CursorError(_("The cursor does not fit this list.")) from exc
    try:
        found = list(rows[: size + 1])
    except (ValidationError, ValueError, TypeError) as exc:
        raise CursorError(_("The cursor does not fit this list.")) from exc
    more = len(found) > size
    found = found[:size]
    if reverse:
        found.reverse()
    page = KeysetPage(object_list=found)
    if found:
        # Forward: a next page if a row was left over, a previous one if we came by cursor.
        # Backward: the mirror image.
        has_older = more if not reverse else bool(cursor)
        has_newer = bool(cursor) if not reverse else more
        if has_older:
            page.next_cursor = encode_cursor(found[-1], ordering, reverse=False)
        if has_newer:
            page.previous_cursor = encode_cursor(found[0], ordering, reverse=True)
    return page


def keyset_page(
    request: HttpRequest, queryset: QuerySet[Any], ordering: Sequence[str], *, size: int
) -> KeysetPage:
    """The UI's keyset page at `?cursor=` with the query string that keeps the filters.

    A malformed cursor shows the first page (a stale bookmark is not worth an error page).
    """
    try:
        page = keyset_paginate(
            queryset, ordering, size=size, cursor=request.GET.get(CURSOR_PARAM) or None
        )
    except CursorError:
        page = keyset_paginate(queryset, ordering, size=size, cursor=None)
    query = request.GET.copy()
    query.pop(CURSOR_PARAM, None)
    query.pop("page", None)
    page.query = query.urlencode()
    return page
