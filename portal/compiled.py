"""Reads compiled to SQL once per process, run with each call's keys.

A page's reads differ from request to request only in a key: the service's id, the user's.
The ORM compiles each to SQL again on every request, and that was most of what a read cost
in Python (a service's deployments: 0.27 ms to compile, 0.46 to run; the session user's
memberships: 0.30 ms in all). `compiled_rows` compiles a selector's `values()` queryset once
per process and thread, with a marker in place of each argument, and then runs that SQL
with the call's arguments: the rows are converted as the ORM's `values()` converts them
(its converters, kept from the compilation) and come back as the same dicts.

A selector is never answered wrongly: when a marker is not found, once and as it is, among
the compiled parameters (an argument that a lookup transforms, or that the SQL inlines, as
a slice's LIMIT), or the queryset cannot be compiled with the markers, every call builds
and runs the queryset as before.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ValuesIterable

P = ParamSpec("P")

# Markers for whole-number arguments: negative (no row has such an id) and inside a 32-bit
# column's range (Django turns an exact lookup out of a column's range into no rows at all).
_INT_MARKER = -1_999_999_000


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str], ...]  # (index in params, argument name)
    names: tuple[str, ...]
    compiler: Any
    converters: Any
    db: str


def _marker(index: int, value: Any) -> Any:
    if type(value) is int:
        return _INT_MARKER - index
    if type(value) is str:
        return f"\x1ecompiled-rows-marker-{index}\x1e"
    return None


def _compile(build: Callable[..., QuerySet[Any]], arguments: dict[str, Any]) -> _Plan | None:
    markers = {name: _marker(i, value) for i, (name, value) in enumerate(arguments.items())}
    if any(marker is None for marker in markers.values()):
        return None
    try:
        queryset = build(**markers)
        if not isinstance(queryset, QuerySet) or queryset._iterable_class is not ValuesIterable:
            return None
        query = queryset.query
        compiler = query.get_compiler(queryset.db)
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet, ValueError, TypeError):
        # no rows or all of them whatever the argument, or a marker the queryset refuses
        # (a negative slice): built on every call
        return None
    slots = []
    for name, marker in markers.items():
        where = [i for i, p in enumerate(params) if type(p) is type(marker) and p == marker]
        if len(where) != 1:
            return None
        slots.append((where[0], name))
    fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
    if compiler.has_composite_fields(fields):
        return None
    names = (
        list(query.selected)
        if query.selected
        else [*query.extra_select, *query.values_select, *query.annotation_select]
    )
    return _Plan(
        sql=sql,
        params=tuple(params),
        slots=tuple(slots),
        names=tuple(names),
        compiler=compiler,
        converters=compiler.get_converters(fields),
        db=queryset.db,
    )


def compiled_rows(build: Callable[P, QuerySet[Any]]) -> Callable[P, list[dict[str, Any]]]:
    """`build(...)`'s `values()` rows, its SQL compiled once per process and thread for the
    arguments' types (whole numbers and text; any other argument: built every call)."""
    signature = inspect.signature(build)
    by_name: Callable[..., QuerySet[Any]] = build  # called with the bound arguments by name
    kept = threading.local()  # a compiler holds its thread's connection

    @functools.wraps(build)
    def rows(*args: P.args, **kwargs: P.kwargs) -> list[dict[str, Any]]:
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        plans: dict[tuple[type, ...], _Plan | None] = kept.__dict__.setdefault("plans", {})
        shape = tuple(type(value) for value in arguments.values())
        if shape not in plans:
            plans[shape] = _compile(by_name, arguments)
        plan = plans[shape]
        if plan is None:
            return list(by_name(**arguments))
        params = list(plan.params)
        for index, name in plan.slots:
            params[index] = arguments[name]
        connection = connections[plan.db]
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            fetched: Any = cursor.fetchall()
        if plan.converters:
            plan.compiler.connection = connection  # what the converters are given
            fetched = plan.compiler.apply_converters(fetched, plan.converters)
        names = plan.names
        return [dict(zip(names, row, strict=True)) for row in fetched]

    return rows
