"""Reads for compatibility: an image version's ABI facts as `ImageFacts`, and the
build × runtime matrix (the manylinux rule, `images.compat.pairs`), in a constant number of
queries. `compatibility_matrix` is re-exported by `images.selectors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from .choices import ImageKind, VersionState
from .compat.pairs import PAIR_COMPATIBLE, PairResult, pair_verdict
from .compat.verdict import ImageFacts, Library, normalize_arch, version_key
from .models import ImageAbi, ImageVersion


def image_version_label(version: ImageVersion) -> str:
    """`runtime/debian:12` (needs base_image loaded)."""
    return f"{version.base_image.name}:{version.tag}"


def image_facts_from_abi(version: ImageVersion, abi: ImageAbi) -> ImageFacts:
    """`ImageFacts` from a version and its stored ABI facts (no query when both are loaded)."""
    libraries = tuple(
        Library(
            path=str(lib.get("path", "")),
            soname=str(lib.get("soname", "")),
            versions=tuple(str(v) for v in lib.get("versions", []) or []),
        )
        for lib in (abi.libraries or [])
        if isinstance(lib, dict)
    )
    return ImageFacts(
        arch=version.arch or "amd64",
        libc_kind=abi.libc_kind,
        libc_version=abi.libc_version,
        loader_paths=tuple(abi.loader_paths or []),
        search_path=tuple(abi.search_path or []),
        libraries=libraries,
        name=image_version_label(version),
    )


def image_version_facts(version: ImageVersion) -> ImageFacts | None:
    """The version's ABI facts (from its scan's `ImageAbi`), None before it was scanned."""
    sbom = version.sbom
    if sbom is None:
        return None
    try:
        abi = sbom.abi
    except ImageAbi.DoesNotExist:
        return None
    return image_facts_from_abi(version, abi)


def image_versions_with_abi() -> QuerySet[ImageVersion]:
    """Approved versions whose scan recorded ABI facts (facts loaded by the same query)."""
    return (
        ImageVersion.objects.filter(state=VersionState.APPROVED, sbom__abi__isnull=False)
        .select_related("base_image", "sbom__abi")
        .order_by("base_image__name", "-created_at", "-id")
    )


@dataclass(frozen=True)
class CompatibilityPair:
    """One build version × runtime version and the pair rule's result."""

    build: ImageVersion
    runtime: ImageVersion
    result: PairResult

    @property
    def compatible(self) -> bool:
        return self.result.verdict == PAIR_COMPATIBLE

    def as_dict(self) -> dict[str, Any]:
        return {
            "build": _version_dict(self.build),
            "runtime": _version_dict(self.runtime),
            **self.result.as_dict(),
        }


def _version_dict(version: ImageVersion) -> dict[str, Any]:
    abi = version.sbom.abi if version.sbom is not None else None
    return {
        "id": version.pk,
        "image": version.base_image.name,
        "tag": version.tag,
        "digest": version.digest,
        "arch": version.arch,
        "libc_kind": abi.libc_kind if abi is not None else "",
        "libc_version": abi.libc_version if abi is not None else "",
    }


def compatibility_matrix(
    *, build: str = "", runtime: str = "", compatible_only: bool = False
) -> list[CompatibilityPair]:
    """Every approved build version × approved runtime version that both have ABI facts.

    Args:
        build: only build images with this name (e.g. `build/gcc`), "" for all.
        runtime: only runtime images with this name (e.g. `runtime/debian`), "" for all.
        compatible_only: drop the "check per binary" pairs.

    One query, whatever the number of versions.
    """
    versions = list(image_versions_with_abi())
    facts: dict[int, ImageFacts] = {}
    for version in versions:
        if version.sbom is None:  # excluded by the query
            continue
        facts[version.pk] = image_facts_from_abi(version, version.sbom.abi)
    builds = [
        v
        for v in versions
        if v.base_image.kind == ImageKind.BUILD and (not build or v.base_image.name == build)
    ]
    runtimes = [
        v
        for v in versions
        if v.base_image.kind == ImageKind.RUNTIME and (not runtime or v.base_image.name == runtime)
    ]
    pairs: list[CompatibilityPair] = []
    for build_version in builds:
        for runtime_version in runtimes:
            result = pair_verdict(facts[build_version.pk], facts[runtime_version.pk])
            if compatible_only and result.verdict != PAIR_COMPATIBLE:
                continue
            pairs.append(CompatibilityPair(build_version, runtime_version, result))
    return pairs


def rebuild_hint(target: ImageFacts, *, arch: str = "") -> str:
    """ "rebuild in build/gcc:12 (glibc ≤ 2.36)": the approved build version with the newest
    glibc that still fits `target` (the pair rule), or "" when none does."""
    best: tuple[tuple[int, ...], str] | None = None
    for version in image_versions_with_abi().filter(base_image__kind=ImageKind.BUILD):
        if version.sbom is None:  # excluded by the query
            continue
        facts = image_facts_from_abi(version, version.sbom.abi)
        if arch and normalize_arch(facts.arch) != normalize_arch(arch):
            continue
        if pair_verdict(facts, target).verdict != PAIR_COMPATIBLE:
            continue
        key = version_key(facts.libc_version)
        if best is None or key > best[0]:
            best = (key, image_version_label(version))
    if best is None:
        return ""
    limit = f" (glibc ≤ {target.libc_version})" if target.libc_version else ""
    return f"rebuild in {best[1]}{limit}"
