"""A binary's compatibility with a target image, from both sides' ABI facts (Leapp's report
model: findings with key, severity, blocking, title, detail, remediation).

Blocking: arch mismatch, libc kind mismatch, interpreter absent, a NEEDED library not found on
the search path (RUNPATH/`$ORIGIN` honoured), a needed (library, version) the target's library
does not define. Warnings: GLIBC_PRIVATE, static binaries (pass, noted); non-ELF → unknown.
Set containment decides, never a "highest GLIBC" shortcut.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BinaryFacts:
    """What the upload read from one ELF file (deployments.BinaryVersion's facts)."""

    file_type: str  # "elf" or another FileType value
    arch: str  # the portal's arch name: amd64, arm64 …
    machine: str = ""  # ELF e_machine, e.g. x86_64, aarch64
    elf_class: str = ""  # ELF32 / ELF64
    linkage: str = ""  # static | dynamic
    interpreter: str = ""
    libc: str = ""  # glibc | musl | ""
    needed: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    version_needs: tuple[tuple[str, str], ...] = ()  # (library soname, version), e.g. GLIBC_2.34
    bundled: tuple[str, ...] = ()  # sonames shipped next to the binary ($ORIGIN)


@dataclass(frozen=True)
class Library:
    """A shared library on the image's search path."""

    path: str
    soname: str
    versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageFacts:
    """An image's ABI facts (images.ImageAbi) and its architecture."""

    arch: str
    libc_kind: str = ""
    libc_version: str = ""
    loader_paths: tuple[str, ...] = ()
    search_path: tuple[str, ...] = ()
    libraries: tuple[Library, ...] = ()


@dataclass(frozen=True)
class CompatFinding:
    """One reason in a verdict."""

    key: str
    severity: str  # high | medium | low | info
    blocking: bool
    title: str
    detail: str = ""
    remediation: str = ""


@dataclass(frozen=True)
class VerdictResult:
    """compatible | incompatible | unknown, with its findings."""

    verdict: str
    findings: tuple[CompatFinding, ...] = field(default_factory=tuple)


def binary_verdict(binary: BinaryFacts, image: ImageFacts) -> VerdictResult:
    """The verdict of running `binary` on `image`. (A seam the compatibility work fills.)"""
    return VerdictResult("unknown", ())
