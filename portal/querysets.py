"""Selectors whose querysets are built once per process.

A list's queryset with correlated subqueries and a handful of joins takes milliseconds of
Python to build (the catalog's four subqueries: 2 ms a request), and it is the same on every
request: only the filters a request adds differ. `built_once` builds it on the first call and
returns a copy (`.all()`) on every call, as Django's class-based views do with a `queryset`
attribute; a copy is what the caller filters, slices and evaluates, never the one kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from django.core.paginator import Page
from django.db.models import QuerySet

P = ParamSpec("P")
Q = TypeVar("Q", bound=QuerySet[Any])


def built_once(build: Callable[P, Q]) -> Callable[P, Q]:
    """`build`'s queryset made once per distinct arguments (hashable ones), copied per call."""
    kept = functools.cache(build)

    @functools.wraps(build)
    def copy(*args: P.args, **kwargs: P.kwargs) -> Q:
        return kept(*args, **kwargs).all()  # type: ignore[arg-type]  # arguments: hashable ones

    return copy


def page_values(page: Page[Any], *fields: str) -> QuerySet[Any]:
    """A page of a paginated queryset as `values(*fields)` rows. Paginate the model
    queryset and read its page so: the count stays over the table alone, where a `values()`
    queryset's count keeps the joins its fields need (the services list's team: 2.1 ms
    against 1.2 for 10,000 services)."""
    rows = page.object_list
    if not isinstance(rows, QuerySet):
        raise TypeError(f"page_values pages querysets, not {type(rows).__name__}")
    return rows.values(*fields)
