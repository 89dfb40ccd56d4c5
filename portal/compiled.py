"""Reads compiled to SQL once per process, run with each call's keys.

A page's reads differ from request to request only in a key: the service's id, the user's,
the reader's teams. The ORM compiles each to SQL again on every request, and that was most
of what a read cost in Python: a deployment's page read its deployment (six related
tables, two annotations) in 1.57 ms, 1.32 of them compiling; a service's deployments took
0.27 ms to compile and 0.46 to run.

`compiled_rows` (a `values()` queryset's dicts) and `compiled_models` (a model queryset's
instances, `select_related` and annotations included) compile the selector's queryset once
per process and thread for the shape of its arguments, with a marker in place of each, and
then run that SQL with the call's arguments. The rows are converted and the models built by
the ORM's own code from the compilation it kept (`values()`'s converters; the model
iterable, given the kept compiler), so they are what the queryset gives.

Arguments: whole numbers and text (a marker each), tuples of whole numbers (a marker an
element: plans by their number) and None (as it is: plans with and without it). A selector is
never answered wrongly: when a marker is not found as it is among the compiled parameters
(an argument a lookup transforms, or that the SQL inlines, as a slice's LIMIT), or the
queryset cannot be compiled with the markers (no rows whatever the argument, a marker it
refuses), every call builds and runs the queryset as before.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, ValuesIterable

P = ParamSpec("P")
M = TypeVar("M", bound=Model)

# Markers for whole numbers: negative (no row has such an id) and inside a 32-bit column's
# range (Django turns an exact lookup out of a column's range into no rows at all).
_INT_MARKER = -1_999_999_000
_NO_MARKER = object()  # an argument that has none: the call is built as it is


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str, int | None], ...]  # param index, argument, tuple element
    queryset: Any  # the marked queryset (its model iterable reads the kept compiler)
    compiler: Any
    converters: Any
    names: tuple[str, ...]


def _marker(value: Any, counter: Iterator[int]) -> Any:
    if value is None:
        return None
    if type(value) is int:
        return _INT_MARKER - next(counter)
    if type(value) is str:
        return f"\x1ecompiled-marker-{next(counter)}\x1e"
    if type(value) is tuple and all(type(v) is int for v in value):
        return tuple(_INT_MARKER - next(counter) for _ in value)
    return _NO_MARKER


def _shape(value: Any) -> Any:
    """What a plan is kept by: the argument's type, and a tuple's elements' types."""
    return (tuple, *map(type, value)) if type(value) is tuple else type(value)


def _slots(params: Any, markers: dict[str, Any]) -> tuple[tuple[int, str, int | None], ...] | None:
    """Where each marker is among `params`, or None when one is not there as it is."""
    slots: list[tuple[int, str, int | None]] = []
    for name, marker in markers.items():
        if marker is None:
            continue
        elements = enumerate(marker) if type(marker) is tuple else [(None, marker)]
        for element, value in elements:
            where = [i for i, p in enumerate(params) if type(p) is type(value) and p == value]
            if not where:
                return None
            slots += [(index, name, element) for index in where]
    return tuple(slots)


def _compile(
    build: Callable[..., QuerySet[Any]], arguments: dict[str, Any], iterable: type
) -> _Plan | None:
    counter = itertools.count(1)
    markers = {name: _marker(value, counter) for name, value in arguments.items()}
    if any(marker is _NO_MARKER for marker in markers.values()):
        return None
    try:
        queryset = build(**markers)
        if not isinstance(queryset, QuerySet) or queryset._iterable_class is not iterable:
            return None
        # what the model iterable does beyond the compiled SQL: not kept
        if getattr(queryset, "_prefetch_related_lookups", ()) or getattr(
            queryset, "_known_related_objects", {}
        ):
            return None
        query = queryset.query
        compiler = query.get_compiler(queryset.db)
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet, ValueError, TypeError):
        # no rows or all of them whatever the argument, or a marker the queryset refuses
        # (a negative slice): built on every call
        return None
    slots = _slots(params, markers)
    fields = [s[0] for s in compiler.select[0 : compiler.col_count]]
    if slots is None or compiler.has_composite_fields(fields):
        return None
    names = (
        list(query.selected)
        if query.selected
        else [*query.extra_select, *query.values_select, *query.annotation_select]
    )
    return _Plan(
        sql=sql,
        params=tuple(params),
        slots=slots,
        queryset=queryset,
        compiler=compiler,
        converters=compiler.get_converters(fields),
        names=tuple(names),
    )


def _planner(
    build: Callable[..., QuerySet[Any]], iterable: type
) -> Callable[..., tuple[_Plan | None, dict[str, Any], list[Any]]]:
    """For a call's arguments: the plan of their shape (None: build the call), the bound
    arguments and the SQL's parameters for them."""
    signature = inspect.signature(build)
    kept = threading.local()  # a compiler holds its thread's connection

    def plan_for(*args: Any, **kwargs: Any) -> tuple[_Plan | None, dict[str, Any], list[Any]]:
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        plans: dict[tuple[Any, ...], _Plan | None] = kept.__dict__.setdefault("plans", {})
        shape = tuple(_shape(value) for value in arguments.values())
        if shape not in plans:
            plans[shape] = _compile(build, arguments, iterable)
        plan = plans[shape]
        if plan is None:
            return None, arguments, []
        params = list(plan.params)
        for index, name, element in plan.slots:
            value = arguments[name]
            params[index] = value if element is None else value[element]
        plan.compiler.connection = connections[plan.queryset.db]  # this thread's
        return plan, arguments, params

    return plan_for


def compiled_rows(build: Callable[P, QuerySet[Any]]) -> Callable[P, list[dict[str, Any]]]:
    """`build(...)`'s `values()` rows, its SQL compiled once per process, thread and shape
    of the arguments (see the module)."""
    by_name: Callable[..., QuerySet[Any]] = build  # called with the bound arguments by name
    plan_for = _planner(by_name, ValuesIterable)

    @functools.wraps(build)
    def rows(*args: P.args, **kwargs: P.kwargs) -> list[dict[str, Any]]:
        plan, arguments, params = plan_for(*args, **kwargs)
        if plan is None:
            return list(by_name(**arguments))
        with plan.compiler.connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            fetched: Any = cursor.fetchall()
        if plan.converters:
            fetched = plan.compiler.apply_converters(fetched, plan.converters)
        names = plan.names
        return [dict(zip(names, row, strict=True)) for row in fetched]

    return rows


class _KeptCompiler:
    """A query's `get_compiler` that gives the kept compiler, its SQL fixed to a call's."""

    def __init__(self, compiler: Any, sql: str, params: list[Any]) -> None:
        self.compiler, self.sql, self.params = compiler, sql, params

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.compiler.as_sql = self.as_sql
        return self.compiler

    def as_sql(self, *args: Any, **kwargs: Any) -> tuple[str, tuple[Any, ...]]:
        return self.sql, tuple(self.params)


def compiled_models(build: Callable[P, QuerySet[M]]) -> Callable[P, list[M]]:
    """`build(...)`'s model instances, its SQL compiled once per process, thread and shape of
    the arguments (see the module); the models are built by the ORM's model iterable."""
    by_name: Callable[..., QuerySet[M]] = build  # called with the bound arguments by name
    plan_for = _planner(by_name, ModelIterable)

    @functools.wraps(build)
    def models(*args: P.args, **kwargs: P.kwargs) -> list[M]:
        plan, arguments, params = plan_for(*args, **kwargs)
        if plan is None:
            return list(by_name(**arguments))
        queryset = plan.queryset._chain()
        # The model iterable asks the query for its compiler: the kept one, whose select,
        # related populators and converters are this SQL's.
        queryset.query.get_compiler = _KeptCompiler(plan.compiler, plan.sql, params)
        return list(queryset)

    return models
