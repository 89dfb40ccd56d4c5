"""`{{ attempt.error|delivery_error }}`: a delivery's stored English error for the reader."""

from __future__ import annotations

from django import template

from ..errors import delivery_error_display

register = template.Library()


@register.filter
def delivery_error(value: object) -> str:
    """The error in the reader's language (see portal.webhooks.errors)."""
    return delivery_error_display(str(value or ""))
