"""Reads whose joins PostgreSQL takes in the order the ORM wrote them.

A page that shows rows of one table with what their foreign keys point to (a deployment's
release history: 10 tables) is written by the ORM as the rows' table joined, key by key, to
each related row. PostgreSQL's planner still weighs every order of those joins, and for the
deployment page that search cost 11 ms a statement to find the plan that was written (0.9 ms
to run it), on every request: planning is not kept between statements. `joins_as_written()`
sets `join_collapse_limit = 1` (and the cost of a page read by key as in memory) for the
statements run inside it (in the statement's own implicit transaction, `SET LOCAL`, one
round trip), so the planner keeps the written order and only picks each join's method:
1.8 ms.

Use it only for reads driven by the rows' own table (by primary keys, or filtered and
ordered on its own columns with an index): a filter on a joined table wants the planner
free to start from that table. Inside a transaction (`atomic`) it does nothing, as a
`SET LOCAL` there would outlive the statement; on other databases too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

# With the order fixed, PostgreSQL's default cost of a random page (4, a spinning disk's)
# made it hash all 10,000 services to join 50 deployments to theirs (3.5 ms to run) rather
# than look each up by key; 1.1, the usual figure for SSDs and cached data, looks them up
# (1.1 ms; the freely planned statement: 2.8 ms to plan, 1.5 to run).
HINT = "SET LOCAL join_collapse_limit = 1; SET LOCAL random_page_cost = 1.1; "


@contextmanager
def joins_as_written() -> Iterator[None]:
    """Run the SELECTs inside with PostgreSQL's join order as written (see the module)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with connection.execute_wrapper(_as_written):
        yield


def _as_written(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    # A server-side cursor (`.iterator()`) declares itself FOR one statement: left as it is.
    named = getattr(getattr(context.get("cursor"), "cursor", None), "name", None)
    if not many and not named and sql.startswith("SELECT") and not connection.in_atomic_block:
        sql = HINT + sql
    return execute(sql, params, many, context)
