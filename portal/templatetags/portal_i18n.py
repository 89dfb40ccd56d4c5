"""Template helpers for the two languages: status words on badges, job step texts.

Badges show enum values (`approved`, `failed`, `pass`); the API keeps them as they are, the
pages show them in the reader's language. The msgid is the value itself (context "status"),
so English pages read exactly as before and an unknown value is shown unchanged.
"""

import functools
from typing import Any

from django import template
from django.utils.functional import Promise
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, pgettext_lazy

from ..job_errors import job_error_display
from ..job_steps import job_step_display
from ..rowtext import html

register = template.Library()

STATUS_LABELS: dict[str, Promise] = {
    "aborted": pgettext_lazy("status", "aborted"),
    "active": pgettext_lazy("status", "active"),
    "affected": pgettext_lazy("status", "affected"),
    "alias": pgettext_lazy("status", "alias"),
    "almalinux": pgettext_lazy("status", "almalinux"),
    "alpine": pgettext_lazy("status", "alpine"),
    "anolis": pgettext_lazy("status", "anolis"),
    "api": pgettext_lazy("status", "api"),
    "applying": pgettext_lazy("status", "applying"),
    "approved": pgettext_lazy("status", "approved"),
    "base_image": pgettext_lazy("status", "base_image"),
    "binary": pgettext_lazy("status", "binary"),
    "blocked": pgettext_lazy("status", "blocked"),
    "blocking": pgettext_lazy("status", "blocking"),
    "bootstrap": pgettext_lazy("status", "bootstrap"),
    "build": pgettext_lazy("status", "build"),
    "build_started": pgettext_lazy("status", "build_started"),
    "building": pgettext_lazy("status", "building"),
    "built": pgettext_lazy("status", "built"),
    "c": pgettext_lazy("status", "c"),
    "cancelled": pgettext_lazy("status", "cancelled"),
    "candidate": pgettext_lazy("status", "candidate"),
    "centos": pgettext_lazy("status", "centos"),
    "changes_requested": pgettext_lazy("status", "changes_requested"),
    "comment": pgettext_lazy("status", "comment"),
    "compatible": pgettext_lazy("status", "compatible"),
    "completed": pgettext_lazy("status", "completed"),
    "component_not_present": pgettext_lazy("status", "component_not_present"),
    "created": pgettext_lazy("status", "created"),
    "critical": pgettext_lazy("status", "critical"),
    "debian": pgettext_lazy("status", "debian"),
    "deployed": pgettext_lazy("status", "deployed"),
    "deprecated": pgettext_lazy("status", "deprecated"),
    "developer": pgettext_lazy("status", "developer"),
    "dockerfile": pgettext_lazy("status", "dockerfile"),
    "draft": pgettext_lazy("status", "draft"),
    "dynamic": pgettext_lazy("status", "dynamic"),
    "elf": pgettext_lazy("status", "elf"),
    "error": pgettext_lazy("status", "error"),
    "fail": pgettext_lazy("status", "fail"),
    "failed": pgettext_lazy("status", "failed"),
    "fetch": pgettext_lazy("status", "fetch"),
    "fixed": pgettext_lazy("status", "fixed"),
    "fixed_in_data": pgettext_lazy("status", "fixed_in_data"),
    "go": pgettext_lazy("status", "go"),
    "healthy": pgettext_lazy("status", "healthy"),
    "high": pgettext_lazy("status", "high"),
    "image": pgettext_lazy("status", "image"),
    "image_version": pgettext_lazy("status", "image_version"),
    "incompatible": pgettext_lazy("status", "incompatible"),
    "info": pgettext_lazy("status", "info"),
    "jar": pgettext_lazy("status", "jar"),
    "java": pgettext_lazy("status", "java"),
    "kylin": pgettext_lazy("status", "kylin"),
    "low": pgettext_lazy("status", "low"),
    "maintainer": pgettext_lazy("status", "maintainer"),
    "medium": pgettext_lazy("status", "medium"),
    "migration": pgettext_lazy("status", "migration"),
    "none": pgettext_lazy("status", "none"),
    "not_affected": pgettext_lazy("status", "not_affected"),
    "not_fixed": pgettext_lazy("status", "not_fixed"),
    "note": pgettext_lazy("status", "note"),
    "ok": pgettext_lazy("status", "ok"),
    "openeuler": pgettext_lazy("status", "openeuler"),
    "other": pgettext_lazy("status", "other"),
    "package_gone": pgettext_lazy("status", "package_gone"),
    "pass": pgettext_lazy("status", "pass"),
    "path": pgettext_lazy("status", "path"),
    "paused": pgettext_lazy("status", "paused"),
    "pending": pgettext_lazy("status", "pending"),
    "published": pgettext_lazy("status", "published"),
    "purged": pgettext_lazy("status", "purged"),
    "python": pgettext_lazy("status", "python"),
    "queued": pgettext_lazy("status", "queued"),
    "rebase": pgettext_lazy("status", "rebase"),
    "rejected": pgettext_lazy("status", "rejected"),
    "related": pgettext_lazy("status", "related"),
    "released": pgettext_lazy("status", "released"),
    "requested": pgettext_lazy("status", "requested"),
    "restricted": pgettext_lazy("status", "restricted"),
    "revoked": pgettext_lazy("status", "revoked"),
    "rocky": pgettext_lazy("status", "rocky"),
    "running": pgettext_lazy("status", "running"),
    "runtime": pgettext_lazy("status", "runtime"),
    "rust": pgettext_lazy("status", "rust"),
    "scanned": pgettext_lazy("status", "scanned"),
    "scanning": pgettext_lazy("status", "scanning"),
    "script": pgettext_lazy("status", "script"),
    "service": pgettext_lazy("status", "service"),
    "skipped": pgettext_lazy("status", "skipped"),
    "static": pgettext_lazy("status", "static"),
    "submitted": pgettext_lazy("status", "submitted"),
    "succeeded": pgettext_lazy("status", "succeeded"),
    "superseded": pgettext_lazy("status", "superseded"),
    "team": pgettext_lazy("status", "team"),
    "ubuntu": pgettext_lazy("status", "ubuntu"),
    "under_investigation": pgettext_lazy("status", "under_investigation"),
    "unknown": pgettext_lazy("status", "unknown"),
    "unscanned": pgettext_lazy("status", "unscanned"),
    "updated": pgettext_lazy("status", "updated"),
    "upload": pgettext_lazy("status", "upload"),
    "upstream": pgettext_lazy("status", "upstream"),
    "url": pgettext_lazy("status", "url"),
    "viewer": pgettext_lazy("status", "viewer"),
    "volume": pgettext_lazy("status", "volume"),
    "vulnerable_code_not_present": pgettext_lazy("status", "vulnerable_code_not_present"),
    "warn": pgettext_lazy("status", "warn"),
    "warning": pgettext_lazy("status", "warning"),
    "withdrawn": pgettext_lazy("status", "withdrawn"),
    "wont_fix": pgettext_lazy("status", "wont_fix"),
    "yanked": pgettext_lazy("status", "yanked"),
}


@register.filter
def status_label(value: object) -> object:
    """The reader's-language word for a status value (the value itself when unknown)."""
    if not isinstance(value, str):
        return value
    return STATUS_LABELS.get(value, value)


@register.simple_tag
def status_badge(status: object, note: object = "") -> SafeString:
    """`<span class="badge badge-STATUS" title="NOTE">label</span>`: a tag, not an include
    (a template included per table row, with its context pushed, cost a jobs page 2 ms).
    A badge of text alone is written once per language (`_badge`): a table repeats a few."""
    if type(status) is str and type(note) is str:
        return _badge(get_language(), status, note)
    return _write_badge(status, note)


@functools.lru_cache(maxsize=2048)
def _badge(language: str | None, status: str, note: str) -> SafeString:
    return _write_badge(status, note)  # `language` only keys the cache: the active one


def _write_badge(status: object, note: object) -> SafeString:
    return html(
        '<span class="badge badge-{}" title="{}">{}</span>', status, note, status_label(status)
    )


@register.filter
def job_step(value: object) -> str:
    """A job's step text in the reader's language (see portal.job_steps)."""
    return job_step_display(str(value or ""))


@register.filter
def job_error(value: object) -> str:
    """A job's (or a request's, a plan item's) stored English error in the reader's language
    (see portal.job_errors)."""
    return job_error_display(str(value or ""))


@register.simple_tag
def filter_options(filterset: Any, name: str) -> SafeString:
    """A filterset's choices for filter `name` as `<option>`s (the empty one left to the
    page), the submitted value selected. From the filter's own choices and the submitted
    data: the bound field's would build the whole filter form (0.5 ms) for a page that was
    asked nothing."""
    current = filterset.data.get(name) if filterset.data else None
    choices = filterset.filters[name].extra["choices"]
    return mark_safe(  # noqa: S308 - each part is html's escaped output
        "".join(
            html(
                '<option value="{}" {}>{}</option>',
                value,
                "selected" if value == current else "",
                label,
            )
            for value, label in (choices() if callable(choices) else choices)
            if value
        )
    )
