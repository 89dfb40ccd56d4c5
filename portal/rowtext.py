"""Table rows written in Python, for the pages whose tables are long.

A template tag costs microseconds, and a busy page's table has hundreds of them: a
deployment's 25 history rows (two `{% url %}`, three translations, four `truncatechars` and
a `date` each) took 13 ms of the page through the template engine. What a row shows is
worked out once a page here instead, the way the template would, and the template only
places it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.http import RFC3986_SUBDELIMS

# A value no route's converter refuses (an int or a str route alike) and no URL holds.
PLACEHOLDER = "7392046185720394618"


def url_filler(
    view_name: str, kwarg: str, request: HttpRequest | None = None
) -> Callable[[Any], str]:
    """`reverse(view_name, kwargs={kwarg: value})` (absolute with a request), reversed once:
    the returned function fills in a value, quoted as `reverse` quotes it. For the ids and
    names the route accepts (it checks no converter)."""
    head, _, tail = reverse(view_name, kwargs={kwarg: PLACEHOLDER}).rpartition(PLACEHOLDER)
    if request is not None:
        head = request.build_absolute_uri(head)

    def fill(value: Any) -> str:
        return f"{head}{quote(str(value), safe=RFC3986_SUBDELIMS + '/~:@')}{tail}"

    return fill


def clip(value: str, length: int) -> str:
    """`truncatechars:length` for the ASCII the tables clip (digests, commits, refs)."""
    return value if len(value) <= length else f"{value[: length - 1]}…"


def date_formatter(format_name: str) -> Callable[[datetime | None], str]:
    """The `date:format_name` filter, its format looked up once: the active language's
    `format_name` (`SHORT_DATETIME_FORMAT` …) in the current time zone."""
    pattern = get_format(format_name)

    def format_date(value: datetime | None) -> str:
        if value is None:
            return ""
        return dateformat.format(timezone.localtime(value), pattern)

    return format_date
