"""Binary analysis: the facts the portal needs about an uploaded application binary.

Pure engine (no Django): `analyze_binary(path)` opens the file, looks only at the bytes it
needs (the ELF header, program headers, the dynamic segment and the version-needs section,
or a zip central directory) and returns a frozen `BinaryFacts`. Files may be gigabytes
long; nothing here reads a whole file into memory.

Truncated or corrupt ELF files raise `BinaryAnalysisError`; a file that is not ELF at all
(a jar, a script, anything else) is not an error: it is reported with `is_elf=False`.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.common.utils import struct_parse
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from elftools.elf.sections import NoteSection
from elftools.elf.segments import InterpSegment

__all__ = [
    "BinaryAnalysisError",
    "FACTS_VERSION",
    "BinaryFacts",
    "analyze_binary",
    "compare_glibc",
]

ELF_MAGIC = b"\x7fELF"
ZIP_MAGIC = b"PK\x03\x04"
SCRIPT_MAGIC = b"#!"
DF_1_PIE = 0x08000000

_GLIBC_VERSION_RE = re.compile(r"^(?:GLIBC_)?(\d+(?:\.\d+)+)\Z")

# pyelftools' e_machine names -> the names the portal (and `uname -m`, Debian, OCI) uses.
# Entries whose name depends on word size or byte order are resolved in `_machine_name`.
_MACHINES: dict[str, str] = {
    "EM_X86_64": "x86_64",
    "EM_386": "i386",
    "EM_AARCH64": "aarch64",
    "EM_ARM": "arm",
    "EM_PPC": "ppc",
    "EM_SPARCV9": "sparc64",
    "EM_IA_64": "ia64",
    "EM_LOONGARCH": "loongarch64",
}


class BinaryAnalysisError(ValueError):
    """The file looks like an ELF binary but cannot be parsed (truncated, corrupt, empty)."""


@dataclass(frozen=True)
class BinaryFacts:
    """What the portal records about an uploaded binary.

    Attributes:
        is_elf: True for ELF files.
        file_type: "elf", "jar", "script" or "other".
        machine: CPU architecture in `uname -m` spelling ("x86_64", "aarch64", ...), "" if
            not ELF.
        bits: 32 or 64 for ELF, None otherwise.
        linkage: "static" (including static-pie) or "dynamic"; "" if not ELF.
        interpreter: the PT_INTERP path ("/lib64/ld-linux-x86-64.so.2"), "" if none.
        needed: DT_NEEDED libraries in file order.
        min_glibc: highest GLIBC_x.y[.z] version the file requires (from .gnu.version_r),
            "" if it requires none.
        libc: "glibc", "musl" or "" (unknown / not applicable).
        elf_class: "ELF32" or "ELF64", "" if not ELF.
        runpath: DT_RUNPATH entries (DT_RPATH when there is no DT_RUNPATH), in order.
        version_needs: every (library, version) pair from `.gnu.version_r` in file order,
            e.g. ("libc.so.6", "GLIBC_2.34"), ("libstdc++.so.6", "GLIBCXX_3.4.30").
    """

    is_elf: bool
    file_type: str
    machine: str = ""
    bits: int | None = None
    linkage: str = ""
    interpreter: str = ""
    needed: tuple[str, ...] = ()
    min_glibc: str = ""
    libc: str = ""
    elf_class: str = ""
    runpath: tuple[str, ...] = ()
    version_needs: tuple[tuple[str, str], ...] = ()


FACTS_VERSION = 2
"""The reader generation `BinaryVersion.facts_version` records (2: version needs, runpath)."""


def _glibc_key(version: str) -> tuple[int, ...]:
    """Turn "GLIBC_2.34" or "2.34" into (2, 34); "" into (); raise ValueError otherwise."""
    if version == "":
        return ()
    match = _GLIBC_VERSION_RE.match(version.strip())
    if match is None:
        raise ValueError(f"not a glibc version: {version!r} (expected e.g. '2.34' or 'GLIBC_2.34')")
    return tuple(int(part) for part in match.group(1).split("."))


def compare_glibc(a: str, b: str) -> int:
    """Compare two glibc versions numerically.

    Accepts "2.34" or "GLIBC_2.34"; "" means "no requirement" and sorts below every version.
    "2.4" < "2.34", and "2.34" == "2.34.0".

    Returns:
        -1, 0 or 1 as `a` is lower than, equal to or higher than `b`.

    Raises:
        ValueError: when either string is not a glibc version.
    """
    key_a, key_b = _glibc_key(a), _glibc_key(b)
    if key_a and key_b:
        width = max(len(key_a), len(key_b))
        key_a = key_a + (0,) * (width - len(key_a))
        key_b = key_b + (0,) * (width - len(key_b))
    return (key_a > key_b) - (key_a < key_b)


def _machine_name(elf: ELFFile) -> str:
    machine = elf["e_machine"]
    bits = elf.elfclass
    little = elf.little_endian
    if machine in _MACHINES:
        return _MACHINES[machine]
    if machine == "EM_PPC64":
        return "ppc64le" if little else "ppc64"
    if machine == "EM_S390":
        return "s390x" if bits == 64 else "s390"
    if machine == "EM_RISCV":
        return f"riscv{bits}"
    if machine == "EM_MIPS":
        base = "mips64" if bits == 64 else "mips"
        return base + ("el" if little else "")
    if isinstance(machine, str):
        return machine.removeprefix("EM_").lower()
    return f"unknown-{machine}"


def _check_extent(what: str, offset: int, size: int, file_size: int) -> None:
    if offset < 0 or size < 0 or offset + size > file_size:
        raise BinaryAnalysisError(
            f"truncated or corrupt ELF file: {what} spans bytes {offset}..{offset + size} "
            f"but the file has only {file_size} bytes"
        )


def _check_layout(elf: ELFFile, file_size: int) -> None:
    """Refuse files whose headers point past the end of the file (truncated uploads)."""
    header = elf.header
    if header["e_phnum"]:
        _check_extent(
            "the program header table",
            header["e_phoff"],
            header["e_phnum"] * header["e_phentsize"],
            file_size,
        )
    if header["e_shoff"] and header["e_shnum"]:
        _check_extent(
            "the section header table",
            header["e_shoff"],
            header["e_shnum"] * header["e_shentsize"],
            file_size,
        )
    for index, segment in enumerate(elf.iter_segments()):
        _check_extent(
            f"segment {index} ({segment['p_type']})",
            segment["p_offset"],
            segment["p_filesz"],
            file_size,
        )
    for section in elf.iter_sections():
        if section["sh_type"] == "SHT_NOBITS" or not section["sh_size"]:
            continue
        _check_extent(
            f"section {section.name or section['sh_type']}",
            section["sh_offset"],
            section["sh_size"],
            file_size,
        )


def _libc_kind(elf: ELFFile, interpreter: str, needed: tuple[str, ...], min_glibc: str) -> str:
    """Which C library the binary is built against, "" when it cannot be told.

    Dynamic binaries: from the interpreter ("ld-musl-*") or the needed libraries
    ("libc.so.6" is glibc, "libc.musl-*" musl). Static binaries: glibc's crt1.o leaves an
    NT_GNU_ABI_TAG note (".note.ABI-tag"); musl does not, so a static binary without it is
    reported as "" (unknown: musl, Go, Rust ... all look alike).
    """
    interp = os.path.basename(interpreter)
    if interp.startswith("ld-musl") or any(lib.startswith("libc.musl") for lib in needed):
        return "musl"
    if min_glibc or "libc.so.6" in needed or interp.startswith(("ld-linux", "ld64.so", "ld.so")):
        return "glibc"
    if not interpreter and not needed:
        for section in elf.iter_sections():
            if not isinstance(section, NoteSection):
                continue
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_ABI_TAG" and note["n_name"] == "GNU":
                    return "glibc"
    return ""


def _is_pie(dynamic: DynamicSegment) -> bool:
    flags = next((tag["d_val"] for tag in dynamic.iter_tags("DT_FLAGS_1")), 0)
    return bool(flags & DF_1_PIE)


def _required_versions(elf: ELFFile, dynamic: DynamicSegment | None) -> list[tuple[str, str]]:
    """Every (library, symbol version) pair the file needs (libc.so.6/GLIBC_2.34, ...).

    Read from the SHT_GNU_verneed section (".gnu.version_r") when section headers exist;
    for files whose section headers were stripped (sstrip), from the DT_VERNEED table the
    dynamic loader itself uses.
    """
    names: list[tuple[str, str]] = []
    sections = [s for s in elf.iter_sections() if isinstance(s, GNUVerNeedSection)]
    if sections:
        for section in sections:
            for verneed, vernaux_iter in section.iter_versions():
                library = str(verneed.name)
                names.extend((library, str(vernaux.name)) for vernaux in vernaux_iter)
        return names
    if dynamic is None:
        return names
    count = next((tag["d_val"] for tag in dynamic.iter_tags("DT_VERNEEDNUM")), 0)
    _vaddr, offset = dynamic.get_table_offset("DT_VERNEED")
    if not count or offset is None:
        return names
    strings = dynamic._get_stringtable()
    structs = elf.structs
    for _ in range(count):
        verneed = struct_parse(structs.Elf_Verneed, elf.stream, stream_pos=offset)
        library = strings.get_string(verneed["vn_file"])
        aux_offset = offset + verneed["vn_aux"]
        for _ in range(verneed["vn_cnt"]):
            vernaux = struct_parse(structs.Elf_Vernaux, elf.stream, stream_pos=aux_offset)
            names.append((library, strings.get_string(vernaux["vna_name"])))
            if not vernaux["vna_next"]:
                break
            aux_offset += vernaux["vna_next"]
        if not verneed["vn_next"]:
            break
        offset += verneed["vn_next"]
    return names


def _analyze_elf(stream: BinaryIO, file_size: int) -> BinaryFacts:
    elf = ELFFile(stream)
    _check_layout(elf, file_size)

    interpreter = ""
    needed: list[str] = []
    runpath: list[str] = []
    rpath: list[str] = []
    dynamic: DynamicSegment | None = None
    for segment in elf.iter_segments():
        p_type = segment["p_type"]
        if p_type == "PT_INTERP" and isinstance(segment, InterpSegment):
            interpreter = segment.get_interp_name()
        elif p_type == "PT_DYNAMIC" and isinstance(segment, DynamicSegment):
            dynamic = segment
            # pyelftools sets a DT_NEEDED tag's name as an attribute when it parses the tag.
            needed.extend(tag.needed for tag in segment.iter_tags("DT_NEEDED"))  # type: ignore[attr-defined]
            for tag in segment.iter_tags("DT_RUNPATH"):
                runpath.extend(p for p in str(tag.runpath).split(":") if p)  # type: ignore[attr-defined]
            for tag in segment.iter_tags("DT_RPATH"):
                rpath.extend(p for p in str(tag.rpath).split(":") if p)  # type: ignore[attr-defined]

    version_needs = _required_versions(elf, dynamic)
    version_names = [version for _library, version in version_needs]
    glibc_names = [
        name
        for name in version_names
        if name.startswith("GLIBC_") and _GLIBC_VERSION_RE.match(name)  # not GLIBC_PRIVATE
    ]
    best = ""
    for name in glibc_names:
        if compare_glibc(name, best) > 0:
            best = name
    min_glibc = best.removeprefix("GLIBC_")

    needed_t = tuple(needed)
    # A PT_INTERP or a DT_NEEDED means the dynamic loader is involved. static-pie binaries
    # have a PT_DYNAMIC (for self-relocation) but neither, so they count as static; a shared
    # library (ET_DYN, not flagged DF_1_PIE) is loaded by the loader even without DT_NEEDED.
    shared_library = elf["e_type"] == "ET_DYN" and dynamic is not None and not _is_pie(dynamic)
    linkage = "dynamic" if interpreter or needed_t or shared_library else "static"
    return BinaryFacts(
        is_elf=True,
        file_type="elf",
        machine=_machine_name(elf),
        bits=elf.elfclass,
        linkage=linkage,
        interpreter=interpreter,
        needed=needed_t,
        min_glibc=min_glibc,
        libc=_libc_kind(elf, interpreter, needed_t, min_glibc),
        elf_class=f"ELF{elf.elfclass}",
        # ld.so ignores DT_RPATH when DT_RUNPATH is present.
        runpath=tuple(runpath or rpath),
        version_needs=tuple(version_needs),
    )


def _is_jar(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.startswith("META-INF/") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError):
        return False
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        # A zip whose central directory asks for an unsupported version or feature.
        raise BinaryAnalysisError(f"unreadable zip/jar archive: {exc}") from exc


def analyze_binary(path: str) -> BinaryFacts:
    """Read the facts the portal records about the file at `path`.

    Args:
        path: a local file (the upload's temporary file).

    Returns:
        BinaryFacts; `is_elf=False` with file_type "jar", "script" or "other" for non-ELF
        files.

    Raises:
        BinaryAnalysisError: the file is empty, or starts like an ELF file but is truncated
            or corrupt.
        OSError: the file cannot be opened.
    """
    with open(path, "rb") as stream:
        file_size = os.fstat(stream.fileno()).st_size
        if file_size == 0:
            raise BinaryAnalysisError("the file is empty (0 bytes)")
        magic = stream.read(4)
        if magic == ELF_MAGIC:
            stream.seek(0)
            try:
                return _analyze_elf(stream, file_size)
            except BinaryAnalysisError:
                raise
            # pyelftools signals bad input with its own errors, struct/construct errors
            # or plain IndexError/ValueError/KeyError from garbage offsets.
            except (
                ELFError,
                ELFParseError,
                ValueError,
                KeyError,
                IndexError,
                EOFError,
            ) as exc:
                raise BinaryAnalysisError(
                    f"truncated or corrupt ELF file ({file_size} bytes): {exc}"
                ) from exc
            except Exception as exc:
                raise BinaryAnalysisError(
                    f"truncated or corrupt ELF file ({file_size} bytes): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        if magic.startswith(SCRIPT_MAGIC):
            return BinaryFacts(is_elf=False, file_type="script")
        if magic == ZIP_MAGIC and _is_jar(path):
            return BinaryFacts(is_elf=False, file_type="jar")
        if magic[:3] == ELF_MAGIC[:3] and file_size < 4:
            raise BinaryAnalysisError(f"truncated ELF file: only {file_size} bytes")
    return BinaryFacts(is_elf=False, file_type="other")
