"""The API's JSON parser: bounded nesting, no NUL characters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No request body of the API nests anywhere near this deep.
MAX_JSON_DEPTH = 64


def _check(data: Any) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH and any string holding a NUL character.

    Iterative, so the check itself cannot run out of stack. PostgreSQL refuses NUL in text
    and jsonb columns with a DataError; refusing it here answers 400 before any write.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise ParseError(gettext("JSON strings may not contain NUL (\\u0000) characters."))
            continue
        if not isinstance(value, Mapping | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ParseError(
                gettext("JSON nested deeper than %(depth)s levels.") % {"depth": MAX_JSON_DEPTH}
            )
        if isinstance(value, Mapping):
            stack.extend((key, depth) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        else:
            stack.extend((item, depth + 1) for item in value)


class PortalJSONParser(JSONParser):
    """DRF's JSONParser, answering 400 for deep nesting (RecursionError) and NUL characters."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(
                gettext("JSON nested deeper than %(depth)s levels.") % {"depth": MAX_JSON_DEPTH}
            ) from exc
        _check(data)
        return data
