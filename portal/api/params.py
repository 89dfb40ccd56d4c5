"""Strict parsing of query parameters and form values that reach SQL."""

from __future__ import annotations

from django.utils.translation import gettext
from rest_framework import exceptions

# PostgreSQL's bigint (every BigAutoField id): larger values cannot name a row.
MAX_ID = 2**63 - 1
_ASCII_DIGITS = frozenset("0123456789")


def id_or_none(raw: str | None) -> int | None:
    """An id from ASCII digits within 1..MAX_ID, or None for anything else.

    `str.isdigit()` accepts Unicode digits such as "²" that `int()` refuses, and an
    unchecked `int()` overflows the database column; both used to be 500s.
    """
    if not raw or len(raw) > 19 or not set(raw) <= _ASCII_DIGITS:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def parse_id(raw: str, *, field: str) -> int:
    """An id filter's value, or a 400 that names the parameter."""
    value = id_or_none(raw)
    if value is None:
        raise exceptions.ValidationError(
            {
                field: gettext("Give an id: a positive integer of ASCII digits up to %(max_id)s.")
                % {"max_id": MAX_ID}
            }
        )
    return value
