"""A binary's compatibility with a target image, from both sides' ABI facts (Leapp's report
model: findings with key, severity, blocking, title, detail, remediation).

Blocking: arch mismatch, libc kind mismatch, interpreter absent, a NEEDED library not found on
the search path (RUNPATH/`$ORIGIN` honoured), a needed (library, version) the target's library
does not define. Warnings: GLIBC_PRIVATE, static binaries (pass, noted); non-ELF → unknown.
Set containment decides, never a "highest GLIBC" shortcut.

Pure: plain values in, a `VerdictResult` out; no ORM, no I/O (golden-testable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

COMPATIBLE = "compatible"
INCOMPATIBLE = "incompatible"
UNKNOWN = "unknown"

# The portal's binaries use `uname -m` names, OCI/Debian use amd64/arm64: one spelling here.
_ARCH_ALIASES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "arm64": "aarch64",
    "armhf": "arm",
    "386": "i386",
    "i686": "i386",
    "loong64": "loongarch64",
}
# Libraries that come with glibc itself: their versions move with the C library.
_GLIBC_LIBRARIES = re.compile(
    r"^(?:libc|libm|libpthread|libdl|librt|libutil|libresolv|libanl|libnsl|libcrypt|"
    r"libmvec|libBrokenLocale|libthread_db)\.so\.[0-9]+\Z|^ld-linux[-.A-Za-z0-9_]*\.so\.[0-9]+\Z"
    r"|^ld64\.so\.[0-9]+\Z"
)
_NUMBERED = re.compile(r"^([A-Z][A-Z0-9]*)_(\d+(?:\.\d+)*)\Z")
_MUSL_LIBC = re.compile(r"^libc\.so\Z|^libc\.musl-[A-Za-z0-9_]+\.so\.1\Z")


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
    name: str = ""  # for messages: "payments-api 1.4.2"


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
    name: str = ""  # for messages: "runtime/debian:12"

    def library(self, soname: str) -> Library | None:
        """The first library on the search path with this soname (the loader's pick)."""
        return self._by_soname.get(soname)

    @cached_property
    def _by_soname(self) -> dict[str, Library]:
        index: dict[str, Library] = {}
        for lib in self.libraries:
            index.setdefault(lib.soname, lib)
        return index


@dataclass(frozen=True)
class CompatFinding:
    """One reason in a verdict."""

    key: str
    severity: str  # high | medium | low | info
    blocking: bool
    title: str
    detail: str = ""
    remediation: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (PlanItem.findings, API bodies)."""
        return {
            "key": self.key,
            "severity": self.severity,
            "blocking": self.blocking,
            "title": self.title,
            "detail": self.detail,
            "remediation": self.remediation,
        }


@dataclass(frozen=True)
class VerdictResult:
    """compatible | incompatible | unknown, with its findings."""

    verdict: str
    findings: tuple[CompatFinding, ...] = field(default_factory=tuple)

    @property
    def blocking(self) -> tuple[CompatFinding, ...]:
        """The findings that block the move."""
        return tuple(f for f in self.findings if f.blocking)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: {"verdict", "findings": [...]}."""
        return {"verdict": self.verdict, "findings": [f.as_dict() for f in self.findings]}


def normalize_arch(arch: str) -> str:
    """`amd64` → `x86_64`, `arm64` → `aarch64` …; other names unchanged (lowercased)."""
    value = arch.strip().lower()
    return _ARCH_ALIASES.get(value, value)


def version_key(version: str) -> tuple[int, ...]:
    """(2, 36) for "GLIBC_2.36" or "2.36"; () when not numbered (GLIBC_PRIVATE)."""
    match = _NUMBERED.match(version)
    text = match.group(2) if match else version
    if not re.match(r"^\d+(?:\.\d+)*\Z", text):
        return ()
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def highest_version(versions: tuple[str, ...] | list[str], prefix: str) -> str:
    """The highest numbered `<prefix>_x.y` in `versions` ("" for none) — for messages and the
    build/runtime pair rule only, never for a binary's verdict."""
    numbered = [v for v in versions if v.startswith(prefix + "_") and version_key(v)]
    return max(numbered, key=version_key) if numbered else ""


def _target(image: ImageFacts) -> str:
    return image.name or "the target image"


def _glibc_remediation(image: ImageFacts, remediation_hint: str) -> str:
    if remediation_hint:
        return remediation_hint
    if image.libc_version:
        return (
            f"rebuild against glibc ≤ {image.libc_version} (in a build image whose glibc is "
            f"no newer than {_target(image)}'s)"
        )
    return f"rebuild against the glibc of {_target(image)} or older"


def _version_remediation(
    library: str, missing: list[str], found: Library, image: ImageFacts, remediation_hint: str
) -> str:
    if _GLIBC_LIBRARIES.match(library):
        return _glibc_remediation(image, remediation_hint)
    if library.startswith("libstdc++.so"):
        top = highest_version(found.versions, "GLIBCXX")
        limit = f" (libstdc++ ≤ {top.removeprefix('GLIBCXX_')})" if top else ""
        hint = f" — {remediation_hint}" if remediation_hint else ""
        return (
            f"rebuild with a GCC whose libstdc++ is no newer than {_target(image)}'s{limit}, "
            f"or link libstdc++ statically{hint}"
        )
    if library.startswith("libgcc_s.so"):
        return remediation_hint or f"rebuild with a GCC no newer than {_target(image)}'s"
    return (
        f"ship a {library} that defines {', '.join(missing)} next to the binary (RUNPATH "
        f"$ORIGIN), install it in the image, or rebuild against the version {_target(image)} has"
    )


def _not_elf(binary: BinaryFacts) -> VerdictResult:
    kind = binary.file_type or "other"
    return VerdictResult(
        UNKNOWN,
        (
            CompatFinding(
                key="not-elf",
                severity="info",
                blocking=False,
                title=f"Not an ELF binary ({kind}): no ABI facts to check",
                detail=(
                    "Jars, scripts and other files depend on a runtime (a JVM, an interpreter) "
                    "the ABI facts do not describe."
                ),
                remediation="check the runtime it needs (java, python …) is in the image",
            ),
        ),
    )


def _arch_finding(binary: BinaryFacts, image: ImageFacts) -> CompatFinding | None:
    binary_arch = normalize_arch(binary.machine or binary.arch)
    image_arch = normalize_arch(image.arch)
    if not binary_arch or not image_arch or binary_arch in ("noarch", image_arch):
        return None
    return CompatFinding(
        key="arch-mismatch",
        severity="high",
        blocking=True,
        title=f"Architecture mismatch: the binary is {binary_arch}, the image is {image_arch}",
        detail=f"A {binary_arch} ELF file cannot run on {_target(image)} ({image_arch}).",
        remediation=f"upload a {image_arch} build of the binary",
    )


def _libc_finding(binary: BinaryFacts, image: ImageFacts) -> CompatFinding | None:
    if not binary.libc or not image.libc_kind or binary.libc == image.libc_kind:
        return None
    return CompatFinding(
        key="libc-mismatch",
        severity="high",
        blocking=True,
        title=f"C library mismatch: the binary is built for {binary.libc}, the image has "
        f"{image.libc_kind}",
        detail=f"{binary.libc} and {image.libc_kind} are not ABI compatible.",
        remediation=(
            f"rebuild it against {image.libc_kind} (in a {image.libc_kind} build image), or "
            f"pick a {binary.libc} runtime image"
        ),
    )


def _interpreter_finding(binary: BinaryFacts, image: ImageFacts) -> CompatFinding | None:
    if not binary.interpreter or binary.interpreter in image.loader_paths:
        return None
    have = ", ".join(image.loader_paths) or "none"
    return CompatFinding(
        key="interpreter-missing",
        severity="high",
        blocking=True,
        title=f"The dynamic loader {binary.interpreter} is not on {_target(image)}",
        detail=f"The binary's PT_INTERP is {binary.interpreter}; the image's loaders: {have}.",
        remediation="pick a runtime image with that loader, or rebuild for the image's loader",
    )


def _bundled(binary: BinaryFacts) -> tuple[set[str], bool]:
    """(sonames shipped with the binary, whether its RUNPATH looks next to it)."""
    origin = any(entry.startswith(("$ORIGIN", "${ORIGIN}")) for entry in binary.runpath)
    return set(binary.bundled), origin


def binary_verdict(
    binary: BinaryFacts, image: ImageFacts, *, remediation_hint: str = ""
) -> VerdictResult:
    """The verdict of running `binary` on `image`.

    Args:
        binary: the binary's ELF facts.
        image: the target image's ABI facts.
        remediation_hint: what to tell a team whose binary needs a newer glibc than the
            target's, e.g. "rebuild in build/gcc:12 (glibc ≤ 2.36)"; without it a generic
            "rebuild against glibc ≤ X" names the target's version.

    Returns:
        incompatible when any finding blocks; unknown for non-ELF files; else compatible.
    """
    if binary.file_type != "elf":
        return _not_elf(binary)
    findings: list[CompatFinding] = []
    arch = _arch_finding(binary, image)
    if arch is not None:
        findings.append(arch)
    if binary.linkage == "static":
        findings.append(
            CompatFinding(
                key="static-binary",
                severity="info",
                blocking=False,
                title="Statically linked: it needs no library from the image",
                detail="Only the kernel interface and the architecture matter.",
            )
        )
        return VerdictResult(INCOMPATIBLE if arch else COMPATIBLE, tuple(findings))
    for finding in (_libc_finding(binary, image), _interpreter_finding(binary, image)):
        if finding is not None:
            findings.append(finding)

    bundled, origin = _bundled(binary)
    musl_target = binary.libc == "musl" and image.libc_kind in ("musl", "")
    resolved: dict[str, Library] = {}
    beside: list[str] = []
    for soname in binary.needed:
        if soname in bundled:
            beside.append(soname)
            continue
        if musl_target and _MUSL_LIBC.match(soname) and binary.interpreter in image.loader_paths:
            continue  # musl's loader is its libc
        found = image.library(soname)
        if found is not None:
            resolved[soname] = found
            continue
        if origin:
            beside.append(soname)
            continue
        findings.append(
            CompatFinding(
                key=f"library-missing:{soname}",
                severity="high",
                blocking=True,
                title=f"{soname} is not on {_target(image)}'s library search path",
                detail=(
                    f"The binary needs {soname} (DT_NEEDED); the loader searches "
                    f"{', '.join(image.search_path) or 'no directories'}"
                    + (f" and its RUNPATH {':'.join(binary.runpath)}" if binary.runpath else "")
                    + "."
                ),
                remediation=(
                    f"install the package providing {soname} in the image, or ship it next "
                    "to the binary with RUNPATH $ORIGIN"
                ),
            )
        )
    if beside:
        findings.append(
            CompatFinding(
                key="bundled-libraries",
                severity="info",
                blocking=False,
                title=f"Shipped with the binary ($ORIGIN): {', '.join(beside)}",
                detail="These are loaded from next to the binary, not from the image.",
            )
        )

    missing: dict[str, tuple[Library, list[str]]] = {}
    private: list[str] = []
    for library, version in binary.version_needs:
        if library in bundled or (library not in resolved and library in beside):
            continue
        found = resolved.get(library) or image.library(library)
        if found is None:
            continue  # reported as a missing library above (or musl's loader)
        if version == "GLIBC_PRIVATE":
            if f"{library}:{version}" not in private:
                private.append(f"{library}:{version}")
            if version in found.versions:
                continue
        if version not in found.versions:
            _lib, versions = missing.setdefault(library, (found, []))
            if version not in versions:
                versions.append(version)
    for library, (found_lib, versions) in missing.items():
        ordered = sorted(versions, key=lambda v: (version_key(v) == (), version_key(v), v))
        glibc_note = (
            f" (glibc {image.libc_version})"
            if _GLIBC_LIBRARIES.match(library) and image.libc_version
            else ""
        )
        findings.append(
            CompatFinding(
                key=f"version-missing:{library}",
                severity="high",
                blocking=True,
                title=f"{library} on {_target(image)} does not define {', '.join(ordered)}",
                detail=(
                    f"The binary needs {library} versions {', '.join(ordered)} "
                    f"(.gnu.version_r); {found_lib.path}{glibc_note} defines "
                    f"{len(found_lib.versions)} versions, not these."
                ),
                remediation=_version_remediation(
                    library, ordered, found_lib, image, remediation_hint
                ),
            )
        )
    if private:
        findings.append(
            CompatFinding(
                key="glibc-private",
                severity="medium",
                blocking=False,
                title="Uses glibc's private interface (GLIBC_PRIVATE)",
                detail=(
                    f"{', '.join(private)}: private symbols may change between any two glibc "
                    "builds, even when the versions match."
                ),
                remediation="rebuild without the private symbols, or test on the target",
            )
        )
    verdict = INCOMPATIBLE if any(f.blocking for f in findings) else COMPATIBLE
    return VerdictResult(verdict, tuple(findings))
