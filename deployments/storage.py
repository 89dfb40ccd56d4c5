"""Where binary files live: Django's storage API, content-addressed by sha256.

`STORAGES["binaries"]` selects the backend (filesystem under `var/` by default, an
S3-compatible bucket through django-storages with `PORTAL_BINARY_STORAGE=s3`).
"""

from __future__ import annotations

import re

from django.core.files import File
from django.core.files.storage import Storage, storages

from portal.api.errors import InsufficientStorage, is_disk_full

_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
PREFIX = "binaries/sha256"


def binary_storage() -> Storage:
    """The storage backend holding binary files."""
    return storages["binaries"]


def binary_storage_name(sha256: str) -> str:
    """`binaries/sha256/<aa>/<sha256>` for a lowercase hex digest.

    Raises:
        ValueError: `sha256` is not 64 lowercase hex digits (never build a path from it).
    """
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{PREFIX}/{sha256[:2]}/{sha256}"


def binary_store(*, sha256: str, content: File[bytes]) -> tuple[str, bool]:
    """Store `content` under its hash; return (name, stored_now).

    `stored_now` is False when the same bytes were already stored (nothing written), so the
    caller must not delete the file on a later failure.

    Raises:
        InsufficientStorage: the storage ran out of space; the partial file is removed.
    """
    storage = binary_storage()
    name = binary_storage_name(sha256)
    if storage.exists(name):
        return name, False
    try:
        saved = storage.save(name, content)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        # The name did not exist a moment ago and the save opens it exclusively: what is
        # there now is our partial copy (a concurrent upload of the same bytes would have
        # met our file and picked another name).
        binary_delete(name)
        raise InsufficientStorage() from exc
    if saved != name:
        # A concurrent upload of the same bytes won the race and the storage picked another
        # name for ours: drop our copy and use theirs.
        storage.delete(saved)
        return name, False
    return name, True


def binary_delete(name: str) -> None:
    """Delete a stored file (missing files are fine)."""
    storage = binary_storage()
    if storage.exists(name):
        storage.delete(name)
