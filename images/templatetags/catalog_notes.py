"""The catalog's cells in the reader's language: `{{ image.status_note|status_note }}` and
`{% scan_summary state summary error %}` (a version's scan state and open-findings counts)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString
from django.utils.translation import gettext, gettext_lazy

from images.status_notes import status_note_display
from portal.job_errors import job_error_display
from portal.rowtext import html

register = template.Library()

# The counts a summary shows, most severe first: its key, the badge's title and text.
_SEVERITY_BADGES = (
    ("critical", gettext_lazy("critical"), gettext_lazy("%(critical)s C")),
    ("high", gettext_lazy("high"), gettext_lazy("%(high)s H")),
    ("medium", gettext_lazy("medium"), gettext_lazy("%(medium)s M")),
    ("low", gettext_lazy("low"), gettext_lazy("%(low)s L")),
)


@register.filter
def status_note(value: object) -> str:
    """The derived notes translated, an admin's note as written ('' for none)."""
    return status_note_display(str(value or ""))


@register.simple_tag
def scan_summary(state: str, summary: dict[str, Any] | None, error: str = "") -> SafeString:
    """A version's scan state as a badge and, once scanned, its open findings by severity
    (`images.scans`' `scan_summary`: open, fixable and a count per severity).

    A tag, not an include: the catalog and a base image's versions show one per row."""
    if state == "unscanned":
        label = gettext("not scanned")
    elif state == "failed":
        label = gettext("scan failed")
    else:
        label = state
    parts = [
        html(
            '<span class="badge badge-{}" title="{}">{}</span>',
            state,
            job_error_display(error or ""),
            label,
        )
    ]
    if state == "scanned":
        summary = summary or {}
        if summary.get("open"):
            for severity, title, text in _SEVERITY_BADGES:
                if summary.get(severity):
                    parts.append(
                        html(
                            ' <span class="badge badge-{}" title="{}">{}</span>',
                            severity,
                            title,
                            str(text) % {severity: summary[severity]},
                        )
                    )
            fixable = summary.get("fixable")
            parts.append(
                html(
                    ' <small class="muted">{}{}</small>',
                    gettext("%(open)s open") % {"open": summary["open"]},
                    gettext(", %(fixable)s fixable") % {"fixable": fixable} if fixable else "",
                )
            )
        else:
            parts.append(html(' <small class="muted">{}</small>', gettext("no open findings")))
    return SafeString("".join(parts))
