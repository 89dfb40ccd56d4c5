"""An image's ABI facts from its files (pure): libc kind and version, the dynamic loader
path(s), and every shared library on the loader's search path with its soname and the
symbol versions it defines (`.gnu.version_d`, e.g. libc.so.6 → GLIBC_2.2.5 … GLIBC_2.36).

`read_oci_layout(dir)` reads the layers of a local OCI layout (the scan's one copy of the
image) into a virtual tree, applying whiteouts: regular files that may matter (files named
like shared libraries, `/etc/ld.so.conf*`, musl's path files) go to a scratch directory,
symlinks are kept as data and resolved inside the image — nothing from an image is ever
followed on this machine. `image_abi(tree)` then reads the ELF facts with pyelftools.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection

ELF_MAGIC = b"\x7fELF"
MAX_FILE_BYTES = 512 * 1024**2
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_LINK_HOPS = 40
VER_FLG_BASE = 0x1
TRIPLETS = (
    "x86_64-linux-gnu",
    "aarch64-linux-gnu",
    "i386-linux-gnu",
    "arm-linux-gnueabihf",
    "arm-linux-gnueabi",
    "powerpc64le-linux-gnu",
    "s390x-linux-gnu",
    "riscv64-linux-gnu",
    "loongarch64-linux-gnu",
    "mips64el-linux-gnuabi64",
)
_CONFIG_PREFIXES = ("etc/ld.so.conf", "etc/ld-musl-")
_LIB_NAME_RE = re.compile(r"^(?:lib.*\.so(?:\.[0-9A-Za-z_.-]+)?|ld-.*\.so(?:\.[0-9.]+)?)\Z")
_LOADER_RE = re.compile(
    r"^(?:ld-linux[-.A-Za-z0-9_]*\.so\.[0-9]+|ld64\.so\.[0-9]+|ld-musl-[A-Za-z0-9_]+\.so\.1)\Z"
)
_GLIBC_RELEASE_RE = re.compile(rb"GNU C Library [^\n]*?version (\d+\.\d+(?:\.\d+)?)")
_GLIBC_VERSION_RE = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\Z")


class AbiError(Exception):
    """The image layout cannot be read (not an OCI layout, a broken layer)."""


@dataclass
class ImageTree:
    """The image's merged filesystem, as far as the ABI reader needs it.

    `files` maps an absolute image path to the scratch copy of a kept regular file (None for
    files seen but not kept), `links` maps a path to its symlink target, `dirs` holds
    directories. Paths are normalised, absolute, without trailing slashes.
    """

    scratch: Path
    files: dict[str, Path | None] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})
    _children: dict[str, set[str]] | None = None

    def remove(self, path: str, *, only_children: bool = False) -> None:
        """Remove `path` (and everything below it); with `only_children`, just its contents."""
        if not only_children:
            self.files.pop(path, None)
            self.links.pop(path, None)
        if path in self.dirs:
            prefix = path.rstrip("/") + "/"
            for table in (self.files, self.links):
                for key in [k for k in table if k.startswith(prefix)]:
                    del table[key]
            self.dirs = {d for d in self.dirs if not d.startswith(prefix)}
            if not only_children and path != "/":
                self.dirs.discard(path)
        self._children = None

    def add(
        self, path: str, *, file: Path | None = None, link: str | None = None, is_dir: bool = False
    ) -> None:
        """Record a layer's entry; it replaces whatever the lower layers had at `path`."""
        parent = posixpath.dirname(path)
        while parent not in self.dirs:  # layers may omit parent directory entries
            self.files.pop(parent, None)
            self.links.pop(parent, None)
            self.dirs.add(parent)
            parent = posixpath.dirname(parent)
        if is_dir:
            if path not in self.dirs:
                self.files.pop(path, None)
                self.links.pop(path, None)
                self.dirs.add(path)
        else:
            self.remove(path)
            if link is not None:
                self.links[path] = link
            else:
                self.files[path] = file
        self._children = None

    def children(self, directory: str) -> list[str]:
        """Names directly inside `directory` (a resolved path)."""
        if self._children is None:
            index: dict[str, set[str]] = {}
            for path in (*self.files, *self.links, *self.dirs):
                if path == "/":
                    continue
                parent, name = posixpath.split(path)
                index.setdefault(parent, set()).add(name)
            self._children = index
        return sorted(self._children.get(directory, set()))

    def resolve(self, path: str) -> str | None:
        """`path` with every symlink resolved inside the image; None for a loop or dead end."""
        parts = [p for p in path.split("/") if p]
        current = "/"
        hops = 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                current = posixpath.dirname(current) or "/"
                continue
            candidate = posixpath.join(current, part)
            target = self.links.get(candidate)
            if target is not None:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return None
                base = "/" if target.startswith("/") else current
                parts = [p for p in target.split("/") if p] + parts
                current = base
                continue
            current = candidate
        if current in self.files or current in self.dirs:
            return current
        return None

    def read(self, path: str) -> bytes | None:
        """The kept content of `path` (symlinks resolved), or None."""
        real = self.resolve(path)
        stored = self.files.get(real) if real else None
        if stored is None:
            return None
        return stored.read_bytes()


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    path = posixpath.normpath("/" + name.lstrip("/"))
    return "/" if path in ("/.", "//") else path


def _keep(path: str) -> bool:
    """The loader's configuration, and every file named like a shared library (wherever it
    is: ld.so.conf may name any directory)."""
    relative = path.lstrip("/")
    if relative.startswith(_CONFIG_PREFIXES):
        return True
    return _LIB_NAME_RE.match(posixpath.basename(relative)) is not None


def _layers(layout: Path) -> list[Path]:
    try:
        index = json.loads((layout / "index.json").read_text())
        manifest_digest = index["manifests"][0]["digest"]
        manifest = json.loads(_blob(layout, manifest_digest).read_text())
        if "layers" not in manifest:  # an index: take the first (single-arch copy) manifest
            manifest = json.loads(_blob(layout, manifest["manifests"][0]["digest"]).read_text())
        return [_blob(layout, layer["digest"]) for layer in manifest["layers"]]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise AbiError(f"{layout} is not a readable OCI layout: {exc}") from exc


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or not re.match(r"^[a-f0-9]{64}\Z", hexdigest):
        raise ValueError(f"bad blob digest {digest!r}")
    return layout / "blobs" / "sha256" / hexdigest


def read_oci_layout(layout: Path, scratch: Path) -> ImageTree:
    """Apply the layers of the OCI layout `layout` in order into a tree under `scratch`.

    Raises:
        AbiError: the layout or one of its layers cannot be read.
    """
    tree = ImageTree(scratch=scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    total = 0
    counter = 0
    for layer in _layers(layout):
        try:
            with tarfile.open(layer, mode="r:*") as archive:
                members = archive.getmembers()
                for member in members:  # whiteouts apply to the lower layers only: first
                    path = _normal(member.name)
                    base = posixpath.basename(path)
                    if base == ".wh..wh..opq":
                        tree.remove(posixpath.dirname(path), only_children=True)
                    elif base.startswith(".wh."):
                        tree.remove(posixpath.join(posixpath.dirname(path), base[4:]))
                for member in members:
                    path = _normal(member.name)
                    base = posixpath.basename(path)
                    if base.startswith(".wh.") or path == "/":
                        continue
                    if member.isdir():
                        tree.add(path, is_dir=True)
                    elif member.issym():
                        tree.add(path, link=member.linkname)
                    elif member.islnk():
                        source = _normal(member.linkname)
                        tree.add(path, file=tree.files.get(source))
                    elif member.isreg():
                        kept: Path | None = None
                        if (
                            _keep(path)
                            and member.size <= MAX_FILE_BYTES
                            and total < MAX_TOTAL_BYTES
                        ):
                            handle = archive.extractfile(member)
                            if handle is not None:
                                counter += 1
                                kept = scratch / f"{counter:07d}"
                                with kept.open("wb") as out:
                                    shutil.copyfileobj(handle, out)
                                total += member.size
                        tree.add(path, file=kept)
                    # devices, fifos: not part of the ABI
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise AbiError(f"layer {layer.name[:12]} cannot be read: {exc}") from exc
    return tree


@dataclass(frozen=True)
class Library:
    """A shared library on the search path."""

    path: str
    soname: str
    versions: list[str]
    names: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "soname": self.soname,
            "versions": self.versions,
            "names": self.names,
        }


@dataclass(frozen=True)
class AbiFacts:
    """What `ImageAbi` stores."""

    libc_kind: str
    libc_version: str
    loader_paths: list[str]
    search_path: list[str]
    libraries: list[Library]

    def library(self, soname: str) -> Library | None:
        return next((lib for lib in self.libraries if lib.soname == soname), None)


def _ld_so_conf(tree: ImageTree, path: str, seen: set[str]) -> list[str]:
    if path in seen or len(seen) > 200:
        return []
    seen.add(path)
    content = tree.read(path)
    if content is None:
        return []
    dirs: list[str] = []
    for raw in content.decode("utf-8", "replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            for pattern in line.split()[1:]:
                if not pattern.startswith("/"):
                    pattern = posixpath.join(posixpath.dirname(path), pattern)
                directory = tree.resolve(posixpath.dirname(pattern))
                if directory is None:
                    continue
                for name in tree.children(directory):
                    if fnmatch.fnmatch(name, posixpath.basename(pattern)):
                        dirs.extend(_ld_so_conf(tree, posixpath.join(directory, name), seen))
        elif line.startswith("hwcap"):
            continue
        else:
            dirs.extend(part for part in re.split(r"[\s:,=]+", line) if part.startswith("/"))
    return dirs


def _search_path(tree: ImageTree, musl: bool) -> list[str]:
    if musl:
        configured: list[str] = []
        for name in tree.children(tree.resolve("/etc") or "/etc"):
            if name.startswith("ld-musl-") and name.endswith(".path"):
                content = tree.read(f"/etc/{name}") or b""
                configured += [
                    p
                    for p in re.split(r"[\s:]+", content.decode("utf-8", "replace"))
                    if p.startswith("/")
                ]
        return configured or ["/lib", "/usr/local/lib", "/usr/lib"]
    dirs = _ld_so_conf(tree, "/etc/ld.so.conf", set())
    for triplet in TRIPLETS:
        for base in ("/lib", "/usr/lib"):
            if tree.resolve(f"{base}/{triplet}") is not None:
                dirs.append(f"{base}/{triplet}")
    dirs += ["/lib", "/usr/lib", "/lib64", "/usr/lib64"]
    return dirs


def _elf_facts(path: Path) -> tuple[str, list[str]] | None:
    """(soname, defined symbol versions) of a shared object; None when not one."""
    try:
        with path.open("rb") as handle:
            if handle.read(4) != ELF_MAGIC:
                return None
            handle.seek(0)
            elf = ELFFile(handle)
            if elf.header["e_type"] != "ET_DYN":
                return None
            soname = ""
            versions: list[str] = []
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_SONAME":
                            soname = str(getattr(tag, "soname", ""))
                elif isinstance(section, GNUVerDefSection):
                    for verdef, auxiliaries in section.iter_versions():
                        if verdef["vd_flags"] & VER_FLG_BASE:
                            continue
                        first = next(iter(auxiliaries), None)
                        if first is not None:
                            versions.append(str(first.name))
            return soname, versions
    except (ELFError, ELFParseError, OSError, ValueError, KeyError, AssertionError):
        return None


def _version_key(version: str) -> tuple[int, ...]:
    match = _GLIBC_VERSION_RE.match(version)
    return tuple(int(x or 0) for x in match.groups()) if match else (-1,)


def image_abi(tree: ImageTree, *, musl_version: str = "") -> AbiFacts:
    """The ABI facts of `tree` (see the module docstring)."""
    loaders: list[str] = []
    loader_dirs = ["/lib", "/lib64", "/usr/lib", "/usr/lib64"] + [
        f"{base}/{triplet}" for triplet in TRIPLETS for base in ("/lib", "/usr/lib")
    ]
    for directory in loader_dirs:
        real = tree.resolve(directory)
        if real is None or real not in tree.dirs:
            continue
        for name in tree.children(real):
            if _LOADER_RE.match(name) and tree.resolve(f"{real}/{name}") is not None:
                loaders.append(f"{directory}/{name}")
    loaders = sorted(set(loaders))
    musl = any("ld-musl-" in path for path in loaders)
    glibc = any("ld-musl-" not in path for path in loaders)
    search_path: list[str] = []
    real_dirs: set[str] = set()
    for directory in _search_path(tree, musl and not glibc):
        directory = posixpath.normpath(directory)
        real = tree.resolve(directory)
        if real is None or real not in tree.dirs or real in real_dirs:
            continue
        real_dirs.add(real)
        search_path.append(directory)
    libraries: dict[str, Library] = {}
    names: dict[str, set[str]] = {}
    for directory in search_path:
        real_dir = tree.resolve(directory) or directory
        for name in tree.children(real_dir):
            if not _LIB_NAME_RE.match(name):
                continue
            real = tree.resolve(f"{real_dir}/{name}")
            if real is None or real not in tree.files:
                continue
            names.setdefault(real, set()).add(f"{directory}/{name}")
            if real in libraries:
                continue
            stored = tree.files.get(real)
            facts = _elf_facts(stored) if stored is not None else None
            if facts is None:
                continue
            soname, versions = facts
            libraries[real] = Library(real, soname or posixpath.basename(real), versions, [])
    result = [
        Library(lib.path, lib.soname, lib.versions, sorted(names.get(lib.path, set())))
        for lib in sorted(libraries.values(), key=lambda lib: (lib.soname, lib.path))
    ]
    libc_kind = libc_version = ""
    libc = next((lib for lib in result if lib.soname == "libc.so.6"), None)
    if libc is not None:
        libc_kind = "glibc"
        content = tree.read(libc.path) or b""
        match = _GLIBC_RELEASE_RE.search(content)
        if match:
            libc_version = match.group(1).decode()
        else:
            numbered = [v for v in libc.versions if _GLIBC_VERSION_RE.match(v)]
            if numbered:
                libc_version = max(numbered, key=_version_key).removeprefix("GLIBC_")
    elif musl:
        libc_kind = "musl"
        libc_version = musl_version
    return AbiFacts(libc_kind, libc_version, loaders, search_path, result)
