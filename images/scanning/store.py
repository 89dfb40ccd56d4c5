"""Where syft-json SBOMs live: gzip, content-addressed by the sha256 of the JSON, in
Django's storage `STORAGES["sboms"]` (the filesystem under var/ by default)."""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

PREFIX = "sboms/sha256"
MAX_SBOM_BYTES = 1024**3
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class StoredSbom:
    """A stored SBOM: its storage name, the sha256 of the JSON and the compressed size."""

    name: str
    sha256: str
    size: int


def sbom_storage() -> Storage:
    """The storage backend holding SBOM blobs."""
    return storages["sboms"]


def sbom_storage_name(sha256: str) -> str:
    """`sboms/sha256/<aa>/<sha256>.json.gz`.

    Raises:
        ValueError: not a lowercase sha256 hex digest.
    """
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{PREFIX}/{sha256[:2]}/{sha256}.json.gz"


def sbom_store(raw: bytes) -> StoredSbom:
    """Store the syft-json bytes (gzip, reproducible: no name, no mtime); the same JSON is
    stored once."""
    sha256 = hashlib.sha256(raw).hexdigest()
    name = sbom_storage_name(sha256)
    storage = sbom_storage()
    if storage.exists(name):
        return StoredSbom(name, sha256, storage.size(name))
    compressed = gzip.compress(raw, compresslevel=6, mtime=0)
    saved = storage.save(name, ContentFile(compressed))
    return StoredSbom(saved, sha256, len(compressed))


def sbom_read(name: str, *, expected_sha256: str = "") -> bytes:
    """The syft-json bytes stored under `name` (checked against `expected_sha256`).

    Raises:
        FileNotFoundError: no such blob.
        ValueError: the blob is not gzip, too large, or its content does not match.
    """
    storage = sbom_storage()
    if not storage.exists(name):
        raise FileNotFoundError(name)
    with storage.open(name, "rb") as handle, gzip.GzipFile(fileobj=handle) as unzipped:
        try:
            raw = unzipped.read(MAX_SBOM_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise ValueError(f"SBOM blob {name} is not valid gzip: {exc}") from exc
    if len(raw) > MAX_SBOM_BYTES:
        raise ValueError(f"SBOM blob {name} is larger than {MAX_SBOM_BYTES} bytes")
    if expected_sha256 and hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise ValueError(f"SBOM blob {name} does not match its sha256")
    return raw
