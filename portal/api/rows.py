"""API lists served from `values()` rows: the serializer's own fields, no model instances.

A list page of 50 rows built 50 to 300 model instances (one per `select_related` table) and
walked each DRF field's `get_attribute` over them: at company scale that was most of a list
request's CPU, every request. `RowListMixin.list` asks the queryset for exactly the columns
the serializer shows (`values()`, relations followed as joins) and gives each value to the
same field's `to_representation`, so the JSON is the one the serializer gives, byte for byte:

* a model field or an annotation, by its `source` (`team.name` → `team__name`); a null
  relation on the way is what DRF makes of a missing attribute (the field's default, None
  when it allows null, else the field is left out);
* `PrimaryKeyRelatedField` (the related id) and `SlugRelatedField` (the related slug);
* `HyperlinkedIdentityField`, reversed once per request with a placeholder;
* any field (a `SerializerMethodField`, one over a property) whose serializer has
  `row_<name>(row)` and lists the columns that method reads in `row_columns` (a dict from
  field name to column names); the field's `to_representation` formats what it returns.
  What such methods need beyond the row (a prefetch's rows) the serializer's
  `rows_prefetch(page)` reads once per page, before the rows are shown.

A serializer with any other field (a property, a nested serializer, a method without a row
twin), a request with a format suffix or API versioning is served by DRF's own `list`, and
so is every list with the setting `PORTAL_API_ROWS = False`: `tests/portal/test_api_rows.py`
holds each list's body equal, byte for byte, to DRF's.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db.models import JSONField, Model, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from rest_framework import ISO_8601, relations, serializers
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from ..rowtext import url_filler
from ..sql_hints import joins_as_written
from .pagination import KeysetPagination

# A page whose rows join this many tables (the list's own included) picks its ids first.
IDS_FIRST_TABLES = 6


@dataclass(frozen=True)
class _Column:
    """How one serializer field reads its value from a row."""

    name: str  # the field's name in the output
    kind: str  # "value", "pk", "url", "method", "json"
    key: str = ""  # the row key of the value
    hops: tuple[str, ...] = ()  # row keys of the relations on the way (None: missing)
    view_name: str = ""  # "url": the route and its kwarg and lookup column
    url_kwarg: str = ""
    # The field of a serializer built once for the plan: its `to_representation`, default
    # and `allow_null` depend on its declaration only (the fields that need the request, a
    # URL or a nested serializer, are not read through it), so no request builds its fields.
    field: Any = dataclasses.field(default=None, compare=False)


class Row(dict[str, Any]):
    """A `values()` row; `row.pk` is its id (what `row_<name>` methods read)."""

    @property
    def pk(self) -> Any:
        return self["id"]


def _path(model: type[Model], attrs: list[str], annotations: Iterable[str]) -> list[str] | None:
    """The row keys of the relations on `attrs` and of its value (last), or None when a
    step is not a column: a property, a reverse or many-to-many relation."""
    if len(attrs) == 1 and attrs[0] in annotations:
        return [attrs[0]]
    keys: list[str] = []
    meta = model._meta
    for index, attr in enumerate(attrs):
        try:
            field = meta.get_field(attr)
        except FieldDoesNotExist:
            return None
        if not getattr(field, "concrete", False) or field.many_to_many or field.one_to_many:
            return None
        keys.append("__".join(attrs[: index + 1]))
        if index < len(attrs) - 1:
            if not field.is_relation or field.related_model is None:
                return None
            meta = field.related_model._meta
    return keys


def _ends_on_relation(model: type[Model], attrs: list[str], annotations: Iterable[str]) -> bool:
    if len(attrs) == 1 and attrs[0] in annotations:
        return False
    meta = model._meta
    field: Any = None
    for attr in attrs:
        field = meta.get_field(attr)
        if field.is_relation and field.related_model is not None:
            meta = field.related_model._meta
    return bool(field is not None and field.is_relation)


@functools.cache
def _plan(
    serializer_class: Any,
    model: Any,
    annotations: frozenset[str],
) -> tuple[_Column, ...] | None:
    """The columns of `serializer_class`'s readable fields, or None when one cannot be read
    from a row (built once per serializer, model and annotation set)."""
    serializer = serializer_class()
    row_columns: dict[str, tuple[str, ...]] = getattr(serializer_class, "row_columns", {})
    columns: list[_Column] = []
    for field in serializer._readable_fields:
        name = field.field_name
        assert name is not None  # noqa: S101 - a bound field has its name
        if hasattr(serializer, f"row_{name}") and name in row_columns:
            columns.append(_Column(name, "method", field=field))
            continue
        if isinstance(field, serializers.SerializerMethodField):
            return None
        if isinstance(field, serializers.HyperlinkedIdentityField):
            if field.lookup_field not in ("pk", "id") and _path(
                model, [field.lookup_field], annotations
            ) != [field.lookup_field]:
                return None
            key = "id" if field.lookup_field == "pk" else field.lookup_field
            columns.append(
                _Column(
                    name,
                    "url",
                    key=key,
                    view_name=str(field.view_name),
                    url_kwarg=field.lookup_url_kwarg,
                )
            )
            continue
        if field.source == "*" or isinstance(
            field, serializers.BaseSerializer | serializers.FileField
        ):
            return None  # the whole object, a nested shape, or a file's URL (the request's)
        attrs = list(field.source_attrs)
        kind = "value"
        if isinstance(field, relations.PrimaryKeyRelatedField):
            if field.pk_field is not None:
                return None
            kind = "pk"
        elif isinstance(field, relations.SlugRelatedField):
            attrs.append(field.slug_field)
            kind = "pk"  # the slug itself, as `to_representation` reads it off the object
        elif isinstance(field, relations.RelatedField | relations.ManyRelatedField):
            return None
        keys = _path(model, attrs, annotations)
        if keys is None:
            return None
        if kind == "value" and _ends_on_relation(model, attrs, annotations):
            return None  # DRF would give str() of the related object
        value_key = keys[-1]  # a pk field's is the related id already (`values("team")`)
        if kind == "value" and len(keys) == 1 and _json_text(model, field, value_key):
            columns.append(_Column(name, "json", key=f"{value_key}{JSON_TEXT}", field=field))
            continue
        columns.append(_Column(name, kind, key=value_key, hops=tuple(keys[:-1]), field=field))
    return tuple(columns)


# A row key naming the text of a JSON column (`_json_text`); no model field ends so.
JSON_TEXT = "_as_json_text"


def _json_text(model: type[Model], field: Any, key: str) -> bool:
    """Whether the list's own JSON column `key`, shown as it is by a plain `JSONField`, may be
    read as its text and decoded once per distinct value on the page (`rows_represent`).

    Most deployments carry the same `[]`, `{}` and `null` in their five JSON columns: the
    ORM decoded 250 of them for a page of 50, a quarter of the list's CPU."""
    if type(field) is not serializers.JSONField or field.binary:
        return False
    try:
        column = model._meta.get_field(key)
    except FieldDoesNotExist:
        return False
    return type(column) is JSONField and column.decoder is None


def _row_keys(
    columns: Iterable[_Column], row_columns: dict[str, tuple[str, ...]]
) -> tuple[list[str], dict[str, Any]]:
    """The `values()` of a page: its keys, and the expressions of the JSON columns' text."""
    keys: dict[str, None] = {"id": None}
    texts: dict[str, Any] = {}
    for column in columns:
        if column.kind == "method":
            keys.update(dict.fromkeys(row_columns[column.name]))
        elif column.kind == "json":
            texts[column.key] = Cast(column.key.removesuffix(JSON_TEXT), TextField())
        else:
            keys.update(dict.fromkeys((*column.hops, column.key)))
    return list(keys), texts


_LEFT_OUT = object()  # a field DRF leaves out of the item (a read-only one it cannot read)


def _left_out() -> Any:
    return _LEFT_OUT


def _plain_iso(field: Any) -> bool:
    """Whether `field` is a `DateTimeField` that shows an aware value as DRF's default does
    (ISO 8601 in the current timezone), so `_reader` may format it without the field."""
    return (
        type(field) is serializers.DateTimeField
        and not hasattr(field, "timezone")
        and str(getattr(field, "format", api_settings.DATETIME_FORMAT)).lower() == ISO_8601
        and bool(settings.USE_TZ)
    )


def _reader(column: _Column, tz: Any) -> Callable[[Row], Any]:
    """How one row gives `column`'s value as `field.to_representation` shows it on the
    instance (`_LEFT_OUT`: no key). Built per page from the plan: a list of 50 rows and 20
    fields called the generic path 1,000 times, with a generator for every value's hops."""
    field, key, hops = column.field, column.key, column.hops
    if column.kind == "pk":

        def value_of(row: Row) -> Any:
            return row[key]

    elif _plain_iso(field):

        def value_of(row: Row) -> Any:
            value = row[key]
            if value is None or value.utcoffset() is None:
                return None if value is None else field.to_representation(value)
            text = value.astimezone(tz).isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text

    elif column.kind == "json":  # its text: decoded once a page per distinct value
        decoded: dict[str, Any] = {}

        def value_of(row: Row) -> Any:
            text = row[key]
            if text is None:
                return None
            try:
                return decoded[text]
            except KeyError:
                value = decoded[text] = json.loads(text)
                return value  # what the field's `to_representation` gives back

    else:
        represent = field.to_representation

        def value_of(row: Row) -> Any:
            value = row[key]
            return None if value is None else represent(value)

    if not hops:
        return value_of
    # DRF met a None on the way: the field's default, None, or no such key.
    if field.default is not empty:
        missing: Callable[[], Any] = field.get_default
    elif field.allow_null:
        missing = type(None)
    else:
        missing = _left_out

    def through(row: Row) -> Any:
        for hop in hops:
            if row[hop] is None:
                return missing()
        return value_of(row)

    return through


def rows_represent(
    serializer: serializers.Serializer[Any], columns: tuple[_Column, ...], rows: Iterable[Any]
) -> list[dict[str, Any]]:
    """Each row as `serializer.to_representation` gives its instance."""
    request = serializer.context.get("request")
    tz = timezone.get_current_timezone()
    readers: list[tuple[str, Callable[[Row], Any]]] = []
    for column in columns:
        if column.kind == "url":
            fill, url_key = url_filler(column.view_name, column.url_kwarg, request), column.key

            def read_url(row: Row, fill: Any = fill, url_key: str = url_key) -> Any:
                value = row[url_key]
                return None if value is None else fill(value)

            readers.append((column.name, read_url))
        elif column.kind == "method":
            readers.append((column.name, _method_reader(serializer, column)))
        else:
            readers.append((column.name, _reader(column, tz)))
    page = [Row(raw) for raw in rows]
    prefetch = getattr(serializer, "rows_prefetch", None)
    if prefetch is not None:
        prefetch(page)
    out = []
    for row in page:
        item: dict[str, Any] = {}
        for name, read in readers:
            value = read(row)
            if value is not _LEFT_OUT:
                item[name] = value
        out.append(item)
    return out


def _method_reader(
    serializer: serializers.Serializer[Any], column: _Column
) -> Callable[[Row], Any]:
    """`row_<name>(row)`, shown by the field (a `SerializerMethodField` shows it as it is)."""
    method = getattr(serializer, f"row_{column.name}")
    if isinstance(column.field, serializers.SerializerMethodField):
        return method
    represent = column.field.to_representation

    def read(row: Row) -> Any:
        value = method(row)
        return None if value is None else represent(value)

    return read


def row_url(serializer: serializers.Serializer[Any], view_name: str, kwarg: str, value: Any) -> str:
    """`reverse(view_name, kwargs={kwarg: value})`, the route reversed once per serializer."""
    cache = serializer.__dict__.setdefault("_row_urls", {})
    fill = cache.get((view_name, kwarg))
    if fill is None:
        fill = cache[(view_name, kwarg)] = url_filler(view_name, kwarg)
    return fill(value)


def _tables(rows: QuerySet[Any]) -> int:
    """How many tables the SQL of `rows` reads (joins included)."""
    return sum(1 for refcount in rows.query.alias_refcount.values() if refcount)


def _skips_rows(view: Any) -> bool:
    """Whether the numbered page asked for lies past the first (its OFFSET skips rows).

    The first page (most requests, e.g. the catalog list a CI pipeline reads) skips nothing, so
    its rows are read in one query, not an ids' query and a rows' query."""
    paginator = view.paginator
    param = getattr(paginator, "page_query_param", None)
    if param is None:
        return True
    return str(view.request.query_params.get(param, "1")).strip() not in {"", "1"}


class _CountedRows:
    """A page's `values()` rows that a paginator counts on the queryset they come from.

    The rows' joins (every column shown, through its relations) are not the list's: they
    follow non-null foreign keys or are LEFT joins, so they add no row and drop none, and
    COUNT(*) over them was the deployments list's dearest query (17 ms over six joins at
    30,000 deployments, against 2 ms for the table alone)."""

    def __init__(self, rows: QuerySet[Any], queryset: QuerySet[Any]) -> None:
        self.rows = rows
        self.ordered = rows.ordered  # what the paginator checks before it warns
        self.counted = queryset  # what `LookaheadPaginator` estimates

    def count(self) -> int:  # what Django's Paginator calls (it falls back to len() alone)
        return self.counted.count()

    def __getitem__(self, index: Any) -> Any:
        return self.rows[index]


def _late_page(view: Any, queryset: QuerySet[Any], rows: QuerySet[Any]) -> list[Any] | None:
    """A numbered page of an annotated queryset past the first, or of rows that join many
    tables: its ids first, then its rows by id.

    The deployments list's first page (7 tables sorted by service and environment name) was
    planned for 6.5 ms and ran in 0.8 ms; its ids' page joins the two tables its order needs.
    PostgreSQL computes a row's SELECT list, correlated subqueries and all, for every row an
    OFFSET skips (page 100 of the services list ran its three counts for 4,950 rows it threw
    away: 99 ms at 10,000 services). The ids' page selects no annotation (unless the order
    needs one), and the rows of those ids compute them for the page alone.
    """
    ids_page = view.paginate_queryset(queryset.values("id"))
    if ids_page is None:
        return None
    return _rows_by_id(rows, [row["id"] for row in ids_page])


def _rows_by_id(rows: QuerySet[Any], ids: list[Any]) -> list[Any]:
    """The `rows` (a `values()` queryset) with these ids, in the ids' order (a row deleted
    since its id was read is left out). The page's `values()` is built once: its 20 columns
    through their joins took 0.6 ms to set up."""
    with joins_as_written():  # by primary keys: each join follows a key (portal.sql_hints)
        by_id = {row["id"]: row for row in rows.filter(pk__in=ids).order_by()}
    return [by_id[pk] for pk in ids if pk in by_id]


def _keyset_ids_first(
    view: Any, queryset: QuerySet[Any], rows: QuerySet[Any], order: list[str]
) -> list[Any]:
    """A keyset page of a queryset whose rows join many tables: its ids first, then its rows
    by id.

    PostgreSQL's planner weighs every join order against the sorted LIMIT: the releases
    page (8 tables) was planned for 10.9 ms and ran in 0.5 ms, every request (the planning
    is not cached between statements). The ids' page joins only what the filters need, and
    the rows of 50 primary keys are planned in 1.8 ms.
    """
    ids_page = view.paginate_queryset(queryset.values("id", *order))
    return _rows_by_id(rows, [row["id"] for row in ids_page])


def row_page(view: Any, queryset: Any, serializer: Any) -> Response | None:
    """The paginated response of `queryset` as `serializer` (a list's child) shows each row,
    served from `values()` rows; None when a field cannot be read from a row, the queryset
    is no QuerySet, or the request has a format suffix or an API version."""
    request = view.request
    if (
        not getattr(settings, "PORTAL_API_ROWS", True)
        or not isinstance(queryset, QuerySet)
        or getattr(request, "version", None)
        or getattr(view, "format_kwarg", None)
    ):
        return None
    child_class: Any = type(serializer)
    model: Any = queryset.model
    columns = _plan(child_class, model, frozenset(queryset.query.annotations))
    if columns is None:
        return None
    keys, texts = _row_keys(columns, getattr(child_class, "row_columns", {}))
    keyset = isinstance(view.paginator, KeysetPagination)
    order: list[str] = []
    if keyset:  # its cursor reads the ordering's keys
        ordering = getattr(view, "keyset_ordering", None) or view.paginator.ordering
        order = [o.lstrip("-") for o in ordering]
        keys += [key for key in order if key not in keys]
    queryset = queryset.prefetch_related(None)
    rows = queryset.values(*keys, **texts)
    many_tables = _tables(rows) >= IDS_FIRST_TABLES
    if keyset:
        page = (
            _keyset_ids_first(view, queryset, rows, order)
            if many_tables
            else view.paginate_queryset(rows)
        )
    elif many_tables or (queryset.query.annotations and _skips_rows(view)):
        page = _late_page(view, queryset, rows)
    else:
        page = view.paginate_queryset(_CountedRows(rows, queryset))
    data = rows_represent(serializer, columns, rows if page is None else page)
    if page is not None:
        response: Response = view.get_paginated_response(data)
        return response
    return Response(data)


class RowListMixin:
    """`list` from `values()` rows when the serializer's fields allow it (see the module)."""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        view: Any = self
        queryset = view.filter_queryset(view.get_queryset())
        response = row_page(view, queryset, view.get_serializer(many=True).child)
        if response is None:
            return super().list(request, *args, **kwargs)  # type: ignore[misc]
        return response
