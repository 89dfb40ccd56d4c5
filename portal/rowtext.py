"""Table rows written in Python, for the pages whose tables are long.

A template tag costs microseconds, and a busy page's table has hundreds of them: a
deployment's 25 history rows (two `{% url %}`, three translations, four `truncatechars` and
a `date` each) took 13 ms of the page through the template engine. A view writes such a
table's lines whole with these helpers, from `values()` rows: each URL reversed once a page
(`url_filler`), each text translated once, each value escaped as the template would
(`html`), and the template places the lines (`{% for row in rows %}{{ row }}{% endfor %}`).
Tests compare each helper with the filter or tag it stands for (tests/portal/test_rowtext.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from html import escape as _escape
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.formats import get_format
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.safestring import SafeString

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


def date_formatter(format_name: str) -> Callable[[date | None], str]:
    """The `date:format_name` filter, its format looked up and split once: the active
    language's `format_name` (`SHORT_DATETIME_FORMAT` …) in the current time zone.

    `dateformat.format` splits the format with a regular expression on every call (24 µs a
    date); here each call only asks `DateFormat` for the format's letters, as it would."""
    pieces: list[tuple[bool, str]] = []
    for index, piece in enumerate(dateformat.re_formatchars.split(str(get_format(format_name)))):
        if index % 2:
            pieces.append((True, piece))
        elif piece:
            pieces.append((False, dateformat.re_escaped.sub(r"\1", piece)))

    def format_date(value: date | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):  # a date is shown as it is, as the filter does
            value = timezone.localtime(value)
        formatter = dateformat.DateFormat(value)
        return "".join(
            str(getattr(formatter, piece)()) if letter else piece for letter, piece in pieces
        )

    return format_date


def html(template: str, *values: Any) -> SafeString:
    """`format_html(template, *values)` for table rows: the values escaped as `escape` does
    (`str`, then the five HTML characters), what is already safe (`__html__`) kept as it is.
    Django's `escape` goes through `keep_lazy` on every value; a 25-row table calls it
    hundreds of times a page."""
    return SafeString(
        template.format(
            *[
                value.__html__() if hasattr(value, "__html__") else _escape(str(value))
                for value in values
            ]
        )
    )


def csrf_input(request: HttpRequest) -> SafeString:
    """What `{% csrf_token %}` writes, for the forms inside rows written here: the page's
    token, asked once (the template's `csrf_token` is one lazy value a page, too)."""
    return html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request))
