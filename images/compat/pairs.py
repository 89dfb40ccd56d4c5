"""Build image × runtime image: the manylinux rule (pure).

A binary built in a build image runs on a runtime image when both have the same architecture
and C library kind and the build image's glibc (and libstdc++, from the GLIBCXX versions
libstdc++.so.6 defines) is no newer than the runtime's. Otherwise: "check per binary" (the
per-binary verdict, `images.compat.verdict.binary_verdict`, decides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .verdict import ImageFacts, highest_version, normalize_arch, version_key

PAIR_COMPATIBLE = "compatible"
PAIR_CHECK = "check_per_binary"


@dataclass(frozen=True)
class PairResult:
    """The pair's verdict and why."""

    verdict: str  # compatible | check_per_binary
    reasons: tuple[str, ...] = field(default_factory=tuple)
    build_glibc: str = ""
    runtime_glibc: str = ""
    build_libstdcxx: str = ""  # highest GLIBCXX_ version libstdc++.so.6 defines, e.g. 3.4.30
    runtime_libstdcxx: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "build_glibc": self.build_glibc,
            "runtime_glibc": self.runtime_glibc,
            "build_libstdcxx": self.build_libstdcxx,
            "runtime_libstdcxx": self.runtime_libstdcxx,
        }


def libstdcxx_version(image: ImageFacts) -> str:
    """The highest GLIBCXX version the image's libstdc++.so.6 defines ("3.4.30"), or ""."""
    library = image.library("libstdc++.so.6")
    if library is None:
        return ""
    return highest_version(library.versions, "GLIBCXX").removeprefix("GLIBCXX_")


def pair_verdict(build: ImageFacts, runtime: ImageFacts) -> PairResult:
    """Whether everything compiled in `build` runs on `runtime` (see the module docstring)."""
    reasons: list[str] = []
    build_arch, runtime_arch = normalize_arch(build.arch), normalize_arch(runtime.arch)
    if build_arch != runtime_arch:
        reasons.append(f"architectures differ: {build_arch or '?'} vs {runtime_arch or '?'}")
    if not build.libc_kind or build.libc_kind != runtime.libc_kind:
        reasons.append(
            f"C libraries differ: {build.libc_kind or 'unknown'} vs "
            f"{runtime.libc_kind or 'unknown'}"
        )
    build_glibc, runtime_glibc = build.libc_version, runtime.libc_version
    if build.libc_kind == "glibc" and runtime.libc_kind == "glibc":
        if not version_key(build_glibc) or not version_key(runtime_glibc):
            reasons.append("a glibc version is unknown")
        elif version_key(build_glibc) > version_key(runtime_glibc):
            reasons.append(f"glibc {build_glibc} (build) is newer than {runtime_glibc} (runtime)")
    build_cxx, runtime_cxx = libstdcxx_version(build), libstdcxx_version(runtime)
    if build_cxx:
        if not runtime_cxx:
            reasons.append("the runtime has no libstdc++.so.6 (C++ binaries must bundle it)")
        elif version_key(build_cxx) > version_key(runtime_cxx):
            reasons.append(f"libstdc++ {build_cxx} (build) is newer than {runtime_cxx} (runtime)")
    return PairResult(
        verdict=PAIR_CHECK if reasons else PAIR_COMPATIBLE,
        reasons=tuple(reasons),
        build_glibc=build_glibc,
        runtime_glibc=runtime_glibc,
        build_libstdcxx=build_cxx,
        runtime_libstdcxx=runtime_cxx,
    )
