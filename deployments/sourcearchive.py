"""Source archives of source builds: a tar.gz checked member by member, then unpacked safely.

Refused, with the member named: absolute paths and `..` components, symbolic links whose
target is absolute or leaves the archive, hard links to anything outside it (or to a
member not seen before), device files, FIFOs and sockets, more than `max_entries` members,
and more than `max_bytes` unpacked. `unpack` checks again while it extracts (with Python's
`data` extraction filter on top) and removes everything it wrote when a check fails.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"


class SourceArchiveError(Exception):
    """The archive is not an acceptable tar.gz (the message says why, naming the member)."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_bytes: int


@dataclass(frozen=True)
class ArchiveSummary:
    entries: int
    unpacked_bytes: int


def _clean_name(raw: str) -> str:
    """The member's path relative to the archive root, or SourceArchiveError."""
    name = raw.replace("\\", "/")
    if name.startswith("/"):
        raise SourceArchiveError(f"{raw!r} is an absolute path: archive members must be relative")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SourceArchiveError(f"{raw!r} contains '..': archive members must stay inside it")
    if "\0" in name:
        raise SourceArchiveError(f"{raw!r} contains a NUL byte")
    return "/".join(parts)


def _check_member(member: tarfile.TarInfo, seen: set[str]) -> str:
    name = _clean_name(member.name)
    if member.issym():
        target = member.linkname
        if not target or target.startswith("/"):
            raise SourceArchiveError(
                f"{member.name!r} is a symbolic link to the absolute path {target!r}: links "
                "must point inside the archive"
            )
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if joined == ".." or joined.startswith("../") or joined.startswith("/"):
            raise SourceArchiveError(
                f"{member.name!r} is a symbolic link to {target!r}, outside the archive"
            )
    elif member.islnk():
        try:
            target = _clean_name(member.linkname)
        except SourceArchiveError as exc:
            raise SourceArchiveError(
                f"{member.name!r} is a hard link to {member.linkname!r}, outside the archive"
            ) from exc
        if target not in seen:
            raise SourceArchiveError(
                f"{member.name!r} is a hard link to {member.linkname!r}, which is not a file "
                "earlier in the archive"
            )
    elif member.ischr() or member.isblk():
        raise SourceArchiveError(f"{member.name!r} is a device file: not allowed in sources")
    elif member.isfifo():
        raise SourceArchiveError(f"{member.name!r} is a FIFO: not allowed in sources")
    elif not (member.isfile() or member.isdir()):
        raise SourceArchiveError(f"{member.name!r} is of an unsupported type ({member.type!r})")
    return name


def _members(path: Path, limits: ArchiveLimits) -> tuple[tarfile.TarFile, list[tarfile.TarInfo]]:
    with path.open("rb") as handle:
        if handle.read(2) != GZIP_MAGIC:
            raise SourceArchiveError("the archive is not gzip-compressed: send a .tar.gz")
    try:
        tar = tarfile.open(path, mode="r:gz")  # noqa: SIM115 - closed by the callers
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SourceArchiveError(f"the archive is not a readable tar.gz: {exc}") from exc
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    total = 0
    try:
        for member in tar:
            if len(members) >= limits.max_entries:
                raise SourceArchiveError(
                    f"the archive has more than {limits.max_entries} members "
                    "(PORTAL_SOURCE_MAX_ENTRIES)"
                )
            name = _check_member(member, seen)
            total += max(0, member.size) if member.isfile() else 0
            if total > limits.max_bytes:
                raise SourceArchiveError(
                    f"the archive unpacks to more than {limits.max_bytes} bytes "
                    "(PORTAL_SOURCE_MAX_UNPACKED_BYTES)"
                )
            if member.isfile():
                seen.add(name)
            members.append(member)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        tar.close()
        raise SourceArchiveError(f"the archive is not a readable tar.gz: {exc}") from exc
    except BaseException:
        tar.close()
        raise
    if not members:
        tar.close()
        raise SourceArchiveError("the archive is empty")
    return tar, members


def check_archive(path: str | Path, limits: ArchiveLimits) -> ArchiveSummary:
    """Check every member of the tar.gz at `path` (nothing is written).

    Raises:
        SourceArchiveError: the first refused member, or a corrupt or oversized archive.
    """
    tar, members = _members(Path(path), limits)
    tar.close()
    return ArchiveSummary(
        entries=len(members), unpacked_bytes=sum(m.size for m in members if m.isfile())
    )


def unpack(path: str | Path, dest: str | Path, limits: ArchiveLimits) -> ArchiveSummary:
    """Check, then extract the tar.gz at `path` into the empty directory `dest`.

    Owners are not kept (everything belongs to the caller), nor set-id bits. On any error
    `dest` is emptied again.

    Raises:
        SourceArchiveError: as `check_archive`, or a member the extraction filter refuses.
    """
    target = Path(dest)
    if not target.is_dir() or any(target.iterdir()):
        raise ValueError(f"unpack needs an empty directory: {target}")
    tar, members = _members(Path(path), limits)
    try:
        with tar:
            for member in members:
                try:
                    tar.extract(member, target, set_attrs=True, filter="data")
                except tarfile.FilterError as exc:
                    raise SourceArchiveError(f"{member.name!r} is refused: {exc}") from exc
    except BaseException:
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise
    return ArchiveSummary(
        entries=len(members), unpacked_bytes=sum(m.size for m in members if m.isfile())
    )
