"""Where OSV records come from: a JSON file (one record or a list), a directory (recursive
`*.json`), a zip (`<ecosystem>/all.zip` as OSV publishes it: one record per entry), or a URL of
an internal mirror. No ORM here.

Every source is bounded before it is trusted:
* a path must resolve (symlinks followed) inside one of the allowed import roots, and so must
  every file found in a directory — a symlink out of the root is refused;
* a file may be at most `max_file_bytes` (a JSON file, decoded whole, `max_json_bytes`); a
  directory or a zip at most `max_entries` records;
* a zip's declared sizes are checked before anything is read (each entry ≤ `max_entry_bytes`,
  all together ≤ `max_total_bytes`), and the bytes really inflated are counted while reading,
  so an archive that lies about its sizes is stopped at the limit, never inflated in memory;
* a URL must start with one of the configured mirror URLs, is fetched without redirects, with
  a timeout, and streamed to a file with a size cap.

A problem with the whole source raises `SourceError` before any record is yielded where it can
be known up front; a problem with one entry yields a `RawRecord` with an `error`.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from images.texts import _

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
READ_BLOCK = 64 * 1024


class SourceError(Exception):
    """The whole source is refused (outside the roots, too large, not a zip, not allowed)."""


class SourceUnavailable(SourceError):
    """The mirror could not be reached or answered 5xx: worth another attempt later."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what one import may read."""

    max_entries: int = 500_000
    max_total_bytes: int = 4 * 1024**3
    max_entry_bytes: int = 8 * 1024**2
    max_file_bytes: int = 1024**3
    # A JSON file is decoded whole (a zip is read an entry at a time): a lower bound on memory.
    max_json_bytes: int = 256 * 1024**2


@dataclass(frozen=True)
class RawRecord:
    """One record as read: where it came from, its bytes or decoded object, or why not."""

    origin: str
    data: bytes | dict[str, Any] | None = None
    error: str = ""


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def resolve_roots(roots: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The allowed roots, resolved (a root that does not exist still bounds, resolved lexically)."""
    return [Path(root).resolve() for root in roots if str(root).strip()]


def resolve_import_path(
    path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]
) -> Path:
    """The real path of `path` if it lies inside one of `roots` (after following symlinks)."""
    text = os.fspath(path)
    if not text or "\x00" in text:
        raise SourceError(_("The path is empty or contains a NUL byte."))
    allowed = resolve_roots(roots)
    if not allowed:
        raise SourceError(
            _("No advisory import roots are configured (PORTAL_ADVISORY_IMPORT_ROOTS).")
        )
    candidate = Path(text)
    if not candidate.is_absolute():
        raise SourceError(_("The path must be absolute: %(path)s.", path=repr(text)))
    real = candidate.resolve()
    if not _inside(real, allowed):
        raise SourceError(
            _(
                "The path %(path)s is outside the allowed import roots (%(roots)s).",
                path=repr(text),
                roots=", ".join(str(r) for r in allowed),
            )
        )
    if not real.exists():
        raise SourceError(_("The path %(path)s does not exist.", path=repr(text)))
    if not (real.is_file() or real.is_dir()):
        raise SourceError(
            _("The path %(path)s is neither a file nor a directory.", path=repr(text))
        )
    return real


def iter_path(path: Path, *, roots: Sequence[Path], limits: Limits) -> Iterator[RawRecord]:
    """The records of an already resolved file or directory (see `resolve_import_path`)."""
    if path.is_dir():
        yield from iter_directory(path, roots=roots, limits=limits)
    else:
        yield from iter_file(path, limits=limits)


def iter_directory(path: Path, *, roots: Sequence[Path], limits: Limits) -> Iterator[RawRecord]:
    """Every `*.json` file under `path` (sorted), each inside the roots after symlinks."""
    files = sorted(p for p in path.rglob("*.json") if not p.is_dir())
    if len(files) > limits.max_entries:
        raise SourceError(
            _(
                "The directory holds %(count)s JSON files; the limit is %(limit)s.",
                count=len(files),
                limit=limits.max_entries,
            )
        )
    checked: list[tuple[str, Path | None, str]] = []
    total = 0
    for file in files:  # every file is checked before any record is read: all or nothing
        origin = str(file.relative_to(path))
        real = file.resolve()
        if not _inside(real, roots):
            checked.append((origin, None, "the file links outside the allowed import roots"))
        elif not real.is_file():
            checked.append((origin, None, "not a regular file"))
        else:
            total += real.stat().st_size
            checked.append((origin, real, ""))
    if total > limits.max_total_bytes:
        raise SourceError(
            _(
                "The directory's files hold %(size)s bytes; the limit is %(limit)s.",
                size=total,
                limit=limits.max_total_bytes,
            )
        )
    for origin, found, error in checked:
        if found is None:
            yield RawRecord(origin, error=error)
        else:
            yield from _json_file(found, origin, limits)


def iter_file(path: Path, *, limits: Limits, origin: str = "") -> Iterator[RawRecord]:
    """The records of one file: a zip archive (by its magic bytes) or JSON."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise SourceError(
            _(
                "The file is %(size)s bytes; the limit is %(limit)s bytes.",
                size=size,
                limit=limits.max_file_bytes,
            )
        )
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        yield from iter_zip(path, limits=limits)
    else:
        yield from _json_file(path, origin or path.name, limits)


def _json_file(path: Path, origin: str, limits: Limits) -> Iterator[RawRecord]:
    size = path.stat().st_size
    limit = min(limits.max_file_bytes, limits.max_json_bytes)
    if size > limit:
        yield RawRecord(
            origin, error=f"JSON file is {size} bytes; the limit is {limit} (use a zip)"
        )
        return
    data = path.read_bytes()
    yield from split_json(data, origin, limits)


def split_json(data: bytes, origin: str, limits: Limits) -> Iterator[RawRecord]:
    """One record (an object) or several (a list of objects) from one JSON document."""
    stripped = data.lstrip()
    if not stripped.startswith(b"["):
        if len(data) > limits.max_entry_bytes:
            yield RawRecord(
                origin, error=f"record is {len(data)} bytes; the limit is {limits.max_entry_bytes}"
            )
            return
        yield RawRecord(origin, data=data)  # parsed (and its JSON checked) by osv.parse_record
        return
    try:
        decoded = json.loads(data, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        yield RawRecord(origin, error=f"malformed JSON: not UTF-8 (byte {exc.start})")
        return
    except (ValueError, RecursionError) as exc:
        yield RawRecord(origin, error=f"malformed JSON: {exc}")
        return
    if len(decoded) > limits.max_entries:
        raise SourceError(
            _(
                "%(origin)s holds %(count)s records; the limit is %(limit)s.",
                origin=origin,
                count=len(decoded),
                limit=limits.max_entries,
            )
        )
    for index, item in enumerate(decoded):
        where = f"{origin}[{index}]"
        if not isinstance(item, dict):
            yield RawRecord(
                where, error=f"a record must be a JSON object, not {type(item).__name__}"
            )
            continue
        yield RawRecord(where, data=item)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def iter_zip(path: Path, *, limits: Limits) -> Iterator[RawRecord]:
    """One record per `.json` entry of a zip, with the declared and the real sizes bounded."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SourceError(
            _("The file is not a readable zip archive: %(error)s.", error=str(exc))
        ) from exc
    with archive:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if len(entries) > limits.max_entries:
            raise SourceError(
                _(
                    "The archive has %(count)s entries; the limit is %(limit)s.",
                    count=len(entries),
                    limit=limits.max_entries,
                )
            )
        declared = sum(i.file_size for i in entries)
        if declared > limits.max_total_bytes:
            raise SourceError(
                _(
                    "The archive declares %(size)s bytes uncompressed; the limit is %(limit)s "
                    "bytes (a zip bomb?).",
                    size=declared,
                    limit=limits.max_total_bytes,
                )
            )
        too_big = [i.filename for i in entries if i.file_size > limits.max_entry_bytes]
        if too_big:
            raise SourceError(
                _(
                    "The archive declares entries over %(limit)s bytes uncompressed "
                    "(%(entries)s; a zip bomb?).",
                    limit=limits.max_entry_bytes,
                    entries=", ".join(too_big[:3]) + (" …" if len(too_big) > 3 else ""),
                )
            )
        total = 0
        for info in entries:
            if not info.filename.endswith(".json"):
                yield RawRecord(info.filename, error="not a .json entry")
                continue
            try:
                data = _read_entry(archive, info, limits.max_entry_bytes)
            except _EntryTooLarge:
                yield RawRecord(
                    info.filename,
                    error=f"inflates past {limits.max_entry_bytes} bytes although it declares "
                    f"{info.file_size} (a zip bomb?)",
                )
                continue
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                # CPython stops inflating at the declared size and fails the CRC: a lying entry
                # ends here, unread beyond its declared size.
                yield RawRecord(info.filename, error=f"unreadable zip entry: {exc}")
                continue
            total += len(data)
            if total > limits.max_total_bytes:
                raise SourceError(
                    _(
                        "The archive inflates past %(limit)s bytes (a zip bomb?).",
                        limit=limits.max_total_bytes,
                    )
                )
            yield from split_json(data, info.filename, limits)


class _EntryTooLarge(Exception):
    pass


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """An entry's bytes, counted while inflating: more than `limit` raises _EntryTooLarge."""
    chunks: list[bytes] = []
    read = 0
    with archive.open(info) as handle:
        while True:
            block = handle.read(READ_BLOCK)
            if not block:
                break
            read += len(block)
            if read > limit:
                raise _EntryTooLarge
            chunks.append(block)
    return b"".join(chunks)


def count_hint(path: Path) -> int | None:
    """How many records `path` will yield, where that is cheap to know (a zip's entries, a
    directory's JSON files), for progress only; None otherwise."""
    try:
        if path.is_dir():
            return sum(1 for p in path.rglob("*.json") if not p.is_dir())
        with path.open("rb") as handle:
            if handle.read(4) not in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
                return None
        with zipfile.ZipFile(path) as archive:
            return sum(1 for info in archive.infolist() if not info.is_dir())
    except (OSError, zipfile.BadZipFile, ValueError):
        return None


def check_mirror_url(url: str, mirrors: Sequence[str]) -> str:
    """`url` if it lies under one of the configured internal mirror URLs, else SourceError."""
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(_("The URL %(url)s is not an http(s) URL.", url=f"{text!r:.200}"))
    if "@" in parts.netloc or ".." in parts.path.split("/") or "\\" in text:
        raise SourceError(
            _("The URL %(url)s is not allowed (credentials or '..').", url=f"{text!r:.200}")
        )
    for mirror in mirrors:
        base = mirror.strip().rstrip("/")
        if base and (text == base or text.startswith(base + "/")):
            return text
    raise SourceError(
        _(
            "The URL %(url)s is not under an allowed advisory mirror (PORTAL_ADVISORY_MIRRORS: "
            "%(mirrors)s).",
            url=f"{text!r:.200}",
            mirrors=", ".join(mirrors) or _("none configured"),
        )
    )


def fetch_url(
    url: str,
    *,
    mirrors: Sequence[str],
    directory: Path,
    max_bytes: int,
    timeout: float,
) -> Path:
    """Stream `url` (an allowed mirror URL) into a new file in `directory`, at most `max_bytes`.

    Redirects are refused (they could leave the mirror). The caller removes the file.
    """
    checked = check_mirror_url(url, mirrors)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        response = requests.get(checked, stream=True, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise SourceUnavailable(
            _("Fetching %(url)s failed: %(error)s", url=checked, error=str(exc))
        ) from exc
    with response:
        if response.status_code >= 500:
            raise SourceUnavailable(
                _(
                    "Fetching %(url)s answered HTTP %(status)s.",
                    url=checked,
                    status=response.status_code,
                )
            )
        if response.is_redirect or response.status_code != 200:
            raise SourceError(
                _(
                    "Fetching %(url)s answered HTTP %(status)s.",
                    url=checked,
                    status=response.status_code,
                )
            )
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise SourceError(
                _(
                    "%(url)s is %(size)s bytes; the limit is %(limit)s bytes.",
                    url=checked,
                    size=declared,
                    limit=max_bytes,
                )
            )
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept for the caller
            dir=directory, prefix="mirror-", suffix=".osv", delete=False
        )
        target = Path(handle.name)
        written = 0
        try:
            with handle:
                for block in response.iter_content(READ_BLOCK):
                    written += len(block)
                    if written > max_bytes:
                        raise SourceError(
                            _(
                                "%(url)s is larger than the limit of %(limit)s bytes.",
                                url=checked,
                                limit=max_bytes,
                            )
                        )
                    handle.write(block)
        except requests.RequestException as exc:
            target.unlink(missing_ok=True)
            raise SourceUnavailable(
                _("Fetching %(url)s failed: %(error)s", url=checked, error=str(exc))
            ) from exc
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    return target
