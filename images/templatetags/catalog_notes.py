"""`{{ image.status_note|status_note }}`: a catalog entry's status note in the reader's language."""

from __future__ import annotations

from django import template

from images.status_notes import status_note_display

register = template.Library()


@register.filter
def status_note(value: object) -> str:
    """The derived notes translated, an admin's note as written ('' for none)."""
    return status_note_display(str(value or ""))
