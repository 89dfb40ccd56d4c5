"""A staticfiles finder for single files of npm packages (`PORTAL_VENDOR_FILES`).

`STATICFILES_DIRS` serves whole directories; ECharts' `dist/` is 51 MB of builds, maps and
ESM variants of which a page needs one file, and collectstatic would copy (and, with
WhiteNoise, compress) all of it. This finder serves exactly the files named in the setting:
`{"vendor/echarts/echarts.min.js": BASE_DIR / "node_modules/echarts/dist/echarts.min.js"}`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.contrib.staticfiles.utils import matches_patterns
from django.core.checks import CheckMessage, Error
from django.core.files.storage import FileSystemStorage


def _files() -> dict[str, Path]:
    return {k: Path(v) for k, v in getattr(settings, "PORTAL_VENDOR_FILES", {}).items()}


class VendorFileFinder(BaseFinder):
    """Finds the files `PORTAL_VENDOR_FILES` maps from a static path to a file on disk."""

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        return [
            Error(
                f"PORTAL_VENDOR_FILES[{name!r}] = {str(path)!r} does not exist; run `npm ci`.",
                id="portal.E101",
            )
            for name, path in _files().items()
            if not path.is_file()
        ]

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        """The file for static path `path` (a list with `find_all`), or None / []."""
        find_all = find_all or bool(kwargs.get("all"))
        source = _files().get(path)
        if source is None or not source.is_file():
            return [] if find_all else None
        return [str(source)] if find_all else str(source)

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        """(file name, storage) pairs; the storage's `prefix` puts the file at its static path."""
        for name, source in _files().items():
            if not source.is_file() or matches_patterns(name, ignore_patterns or []):
                continue
            storage = FileSystemStorage(location=str(source.parent))
            storage.prefix = os.path.dirname(name)  # type: ignore[attr-defined]  # collectstatic reads it
            yield source.name, storage
