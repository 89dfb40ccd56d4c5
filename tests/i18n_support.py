"""The zh-Hans catalog compiled for the tests that read Chinese pages (as `make setup` does)."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.utils.translation import trans_real

LOCALE = Path(settings.BASE_DIR) / "locale"
PO = LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po"


def compile_catalog() -> None:
    """Compile the catalog when its .mo is missing or older, and drop Django's cached ones."""
    if shutil.which("msgfmt") is None:
        raise RuntimeError(
            "msgfmt is missing: apt-get install gettext (scripts/ensure-system-packages)"
        )
    mo = PO.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < PO.stat().st_mtime:
        call_command("compilemessages", locale=["zh_Hans"], verbosity=0)
    trans_real._translations = {}  # noqa: SLF001 - reload after compiling
    trans_real._default = None  # noqa: SLF001
