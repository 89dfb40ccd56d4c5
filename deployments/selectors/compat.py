"""Compatibility reads that join binaries to images: a binary version's facts as
`BinaryFacts`, an image version's as `ImageFacts`, and the verdict of one on the other
(`images.compat.verdict.binary_verdict`), plus the checks of a binary built in a build image
against the runtimes of its service's deployments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from images.compat.verdict import (
    UNKNOWN,
    BinaryFacts,
    CompatFinding,
    ImageFacts,
    VerdictResult,
    binary_verdict,
)
from images.compat_selectors import image_facts_from_abi, image_version_facts, rebuild_hint
from images.models import ImageVersion

from ..models import BinaryVersion, Deployment


def binary_facts(binary: BinaryVersion) -> BinaryFacts:
    """The verdict's view of a binary version's stored ELF facts."""
    return BinaryFacts(
        file_type=binary.file_type,
        arch=binary.arch,
        machine=binary.machine or binary.arch,
        elf_class=binary.elf_class,
        linkage=binary.linkage,
        interpreter=binary.interpreter,
        libc=binary.libc,
        needed=tuple(str(n) for n in binary.needed or []),
        runpath=tuple(str(p) for p in binary.runpath or []),
        version_needs=tuple(
            (str(pair[0]), str(pair[1]))
            for pair in binary.version_needs or []
            if isinstance(pair, list | tuple) and len(pair) == 2
        ),
        name=f"{binary.service.name} {binary.version}" if binary.service_id else "",
    )


def image_facts(version: ImageVersion) -> ImageFacts | None:
    """The version's ABI facts (from `version.sbom.abi`), None before its scan recorded them."""
    return image_version_facts(version)


def image_facts_map(version_ids: Iterable[int]) -> dict[int, ImageFacts]:
    """ABI facts of many versions in one query (versions without facts are left out)."""
    result: dict[int, ImageFacts] = {}
    rows = ImageVersion.objects.filter(
        pk__in=set(version_ids), sbom__abi__isnull=False
    ).select_related("base_image", "sbom__abi")
    for version in rows:
        if version.sbom is None:  # excluded by the query
            continue
        result[version.pk] = image_facts_from_abi(version, version.sbom.abi)
    return result


def no_facts_verdict(version: ImageVersion) -> VerdictResult:
    """unknown: the target has no ABI facts yet."""
    return VerdictResult(
        UNKNOWN,
        (
            CompatFinding(
                key="image-not-scanned",
                severity="info",
                blocking=False,
                title=f"{version.base_image.name}:{version.tag} has no ABI facts yet",
                detail="Its scan has not recorded the libraries and symbol versions it provides.",
                remediation="scan the image first",
            ),
        ),
    )


def binary_verdict_for(
    binary: BinaryVersion,
    version: ImageVersion,
    *,
    facts: ImageFacts | None = None,
    remediation_hint: str | None = None,
) -> VerdictResult:
    """The verdict of `binary` on the image `version` (unknown when it was not scanned).

    `facts` (from `image_facts_map`) saves the query per call in loops; without a
    `remediation_hint` the hint names the approved build image that fits the target.
    """
    target = facts if facts is not None else image_facts(version)
    if target is None:
        return no_facts_verdict(version)
    hint = remediation_hint if remediation_hint is not None else rebuild_hint(target)
    return binary_verdict(binary_facts(binary), target, remediation_hint=hint)


@dataclass(frozen=True)
class RuntimeCheck:
    """A binary's verdict on one deployment's runtime."""

    deployment: Deployment
    runtime: ImageVersion
    result: VerdictResult


def binary_runtime_checks(binary: BinaryVersion) -> list[RuntimeCheck]:
    """The binary's verdicts on the runtime of every deployment of its service (a binary
    uploaded with `built_in` is checked against where it will run). Two queries plus one
    for the rebuild hint per distinct runtime."""
    deployments = list(
        Deployment.objects.filter(service_id=binary.service_id)
        .select_related("environment", "runtime_version__base_image")
        .order_by("environment__name", "pk")
    )
    facts = image_facts_map(d.runtime_version_id for d in deployments)
    hints: dict[int, str] = {}
    checks: list[RuntimeCheck] = []
    for deployment in deployments:
        runtime = deployment.runtime_version
        target = facts.get(runtime.pk)
        if target is not None and runtime.pk not in hints:
            hints[runtime.pk] = rebuild_hint(target, arch=binary.arch)
        result = (
            binary_verdict(binary_facts(binary), target, remediation_hint=hints[runtime.pk])
            if target is not None
            else no_facts_verdict(runtime)
        )
        checks.append(RuntimeCheck(deployment, runtime, result))
    return checks


__all__ = [
    "RuntimeCheck",
    "binary_facts",
    "binary_runtime_checks",
    "binary_verdict_for",
    "image_facts",
    "image_facts_map",
    "no_facts_verdict",
]
