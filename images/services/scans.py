"""Scans: start the scan job of an image version, record what a scan found.

A scan is per digest: the `Sbom` row (its syft-json in storage), its normalised `Package`
rows (deduplicated across every SBOM: bulk get-or-create in batches, never one query per
package), the `SbomPackage` links and the `ImageAbi`. A digest already scanned reuses its
SBOM unless the scan is forced. Binary versions (deployments) record their scans through
`sbom_record` too; they are an `Sbom` with subject `binary`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from rest_framework.exceptions import PermissionDenied

from portal.actors import Actor
from portal.audit import audit_record
from portal.choices import Role, role_at_least
from portal.jobs import job_create
from portal.models import Job

from ..choices import SbomSubject, ScanState, VersionState
from ..models import ImageAbi, ImageVersion, Package, Sbom, SbomPackage
from ..scanning.abi import AbiFacts
from ..scanning.cyclonedx import cyclonedx_json
from ..scanning.ecosystems import osv_ecosystem, syft_distro_os_release
from ..scanning.normalize import PackageIdentity
from ..scanning.store import sbom_read, sbom_store

SCAN_JOB_KIND = "images.scan"
PACKAGE_BATCH = 500
ERROR_CHARS = 4000


def scan_idempotency_key(digest: str) -> str:
    """One live scan per digest (two scans of one digest never run at once)."""
    return f"scan:{digest}"


def image_version_may_scan(version: ImageVersion, actor: Actor) -> bool:
    """Platform admins and maintainers of the base image's owner team may start a scan."""
    if actor.is_platform_admin:
        return True
    role = actor.role_in(version.base_image.owner_team)
    return role is not None and role_at_least(role, Role.MAINTAINER)


def image_version_scan_start(*, version_id: int, actor: Actor, force: bool = False) -> Job:
    """Queue the scan job of an image version; see `image_version_scan_queue`."""
    return image_version_scan_queue(version_id=version_id, actor=actor, force=force)[0]


def image_version_scan_queue(
    *, version_id: int, actor: Actor, force: bool = False
) -> tuple[Job, bool]:
    """Queue the scan job of an image version (202 semantics); return (job, created).

    While a scan of the same digest is queued or running, that job is returned instead of a
    second one. `force` scans again even when the digest already has an SBOM.

    Raises:
        ImageVersion.DoesNotExist: no such version.
        PermissionDenied: neither a platform admin nor a maintainer of the owner team (403).
    """
    version = ImageVersion.objects.select_related("base_image__owner_team").get(pk=version_id)
    if not image_version_may_scan(version, actor):
        raise PermissionDenied(
            gettext(
                "Only platform admins and maintainers of team %(owner_team)s may scan "
                "%(base_image)s versions."
            )
            % {
                "owner_team": version.base_image.owner_team.name,
                "base_image": version.base_image.name,
            }
        )
    with transaction.atomic():
        job, created = job_create(
            kind=SCAN_JOB_KIND,
            actor=actor,
            params={"version_id": version.pk, "force": bool(force)},
            target=version,
            team=version.base_image.owner_team,
            idempotency_key=scan_idempotency_key(version.digest),
        )
        if created:
            ImageVersion.objects.filter(pk=version.pk).exclude(
                scan_state=ScanState.SCANNING
            ).update(scan_state=ScanState.QUEUED)
            audit_record(
                actor=actor,
                action="image_version.scan",
                obj=version,
                before={"scan_state": version.scan_state},
                after={"scan_state": ScanState.QUEUED, "job": job.pk, "force": bool(force)},
            )
    return job, created


def image_versions_scan_approved(*, actor: Actor) -> int:
    """Start a scan of every approved version (the schedule); return how many were queued.

    Not forced: an unscanned or failed version is scanned, a scanned digest reuses its SBOM
    and is matched and gated again."""
    started = 0
    versions = ImageVersion.objects.filter(state=VersionState.APPROVED).order_by("pk")
    for version_id in versions.values_list("pk", flat=True):
        _, created = image_version_scan_queue(version_id=version_id, actor=actor)
        started += int(created)
    return started


def image_version_scan_mark_scanning(*, version_id: int) -> None:
    """The job started: the version is being scanned."""
    ImageVersion.objects.filter(pk=version_id).update(
        scan_state=ScanState.SCANNING, updated_at=timezone.now()
    )


def image_version_scan_failed(*, version_id: int, error: str) -> None:
    """A failed scan: the version keeps the SBOM it had (if any) and says why it failed."""
    ImageVersion.objects.filter(pk=version_id).update(
        scan_state=ScanState.FAILED,
        scan_error=(error or gettext_noop("The scan failed."))[:ERROR_CHARS],
        updated_at=timezone.now(),
    )


def image_scan_job_failed(job: Job) -> None:
    """`on_failure` of the scan job kind: however the job ended (the handler failed, the
    reaper gave up, a user cancelled), the version says why it has no new scan."""
    version_id = job.params.get("version_id")
    if version_id:
        image_version_scan_failed(
            version_id=int(version_id),
            error=job.error or f"The scan job #{job.pk} was {job.state}.",
        )


def sbom_existing(digest: str) -> Sbom | None:
    """The SBOM already recorded for `digest`, if any."""
    return Sbom.objects.filter(digest=digest).first()


def _chunks(items: Sequence[PackageIdentity], size: int) -> Iterable[Sequence[PackageIdentity]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def packages_get_or_create(
    identities: Sequence[PackageIdentity],
) -> dict[tuple[str, str, str, str], int]:
    """The ids of `identities`' Package rows, creating the missing ones (two queries per batch
    of PACKAGE_BATCH: an INSERT … ON CONFLICT DO NOTHING, then one SELECT)."""
    ids: dict[tuple[str, str, str, str], int] = {}
    for batch in _chunks(list(identities), PACKAGE_BATCH):
        Package.objects.bulk_create(
            [
                Package(
                    ecosystem=item.ecosystem,
                    name=item.name,
                    version=item.version,
                    arch=item.arch,
                    source_name=item.source_name,
                    source_version=item.source_version,
                    purl=item.purl,
                    kind=item.kind,
                )
                for item in batch
            ],
            ignore_conflicts=True,
            batch_size=PACKAGE_BATCH,
        )
        wanted = {item.key for item in batch}
        condition = Q(ecosystem__in={k[0] for k in wanted}) & Q(name__in={k[1] for k in wanted})
        rows = Package.objects.filter(condition).values_list(
            "pk", "ecosystem", "name", "version", "arch"
        )
        for pk, ecosystem, name, version, arch in rows:
            key = (ecosystem, name, version, arch)
            if key in wanted:
                ids[key] = pk
    return ids


def sbom_record(
    *,
    digest: str,
    subject: str,
    raw: bytes,
    document: dict[str, Any],
    identities: Sequence[PackageIdentity],
    abi: AbiFacts | None,
    job_id: int | None,
) -> Sbom:
    """Store a scan of `digest`: the blob, the Sbom row (created, or replaced when the digest
    was scanned before), its package links and ABI facts."""
    stored = sbom_store(raw)
    distro = document.get("distro") or {}
    os_release = syft_distro_os_release(distro) if isinstance(distro, dict) else {}
    descriptor = document.get("descriptor") or {}
    fields: dict[str, Any] = {
        "subject": subject,
        "blob_name": stored.name,
        "blob_sha256": stored.sha256,
        "blob_size": stored.size,
        "syft_version": str(descriptor.get("version") or "")[:40],
        "distro_id": os_release.get("ID", "")[:60],
        "distro_version": os_release.get("VERSION_ID", "")[:60],
        "distro_name": os_release.get("PRETTY_NAME", "")[:200],
        "ecosystem": osv_ecosystem(os_release)[:80],
        "package_count": len(identities),
        "scan_job_id": job_id,
        "matched_at": None,
    }
    package_ids = packages_get_or_create(identities)
    with transaction.atomic():
        sbom, created = Sbom.objects.select_for_update().get_or_create(
            digest=digest, defaults=fields
        )
        if not created:
            for name, value in fields.items():
                setattr(sbom, name, value)
            sbom.save()
            SbomPackage.objects.filter(sbom=sbom).exclude(
                package_id__in=list(package_ids.values())
            ).delete()
        SbomPackage.objects.bulk_create(
            [SbomPackage(sbom=sbom, package_id=pk) for pk in sorted(set(package_ids.values()))],
            ignore_conflicts=True,
            batch_size=1000,
        )
        if abi is not None:
            ImageAbi.objects.update_or_create(
                sbom=sbom,
                defaults={
                    "libc_kind": abi.libc_kind,
                    "libc_version": abi.libc_version,
                    "loader_paths": abi.loader_paths,
                    "search_path": abi.search_path,
                    "libraries": [library.as_dict() for library in abi.libraries],
                },
            )
    return sbom


def image_version_scan_attach(*, version_id: int, sbom: Sbom) -> ImageVersion:
    """The version's digest was scanned: link its SBOM, scanned now, no error."""
    ImageVersion.objects.filter(pk=version_id).update(
        sbom=sbom,
        scan_state=ScanState.SCANNED,
        scan_error="",
        scanned_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return ImageVersion.objects.get(pk=version_id)


def image_version_scan_record(
    *,
    version_id: int,
    raw: bytes,
    document: dict[str, Any],
    identities: Sequence[PackageIdentity],
    abi: AbiFacts | None,
    job_id: int | None,
) -> Sbom:
    """Record the scan of an image version's digest (see `sbom_record`) and mark it scanned."""
    version = ImageVersion.objects.get(pk=version_id)
    sbom = sbom_record(
        digest=version.digest,
        subject=SbomSubject.IMAGE,
        raw=raw,
        document=document,
        identities=identities,
        abi=abi,
        job_id=job_id,
    )
    image_version_scan_attach(version_id=version_id, sbom=sbom)
    return sbom


SBOM_FORMATS: dict[str, tuple[str, str]] = {
    "cyclonedx-json": ("application/vnd.cyclonedx+json", "cdx.json"),
    "syft-json": ("application/json", "syft.json"),
}
DEFAULT_SBOM_FORMAT = "cyclonedx-json"


@dataclass(frozen=True)
class SbomExport:
    """An SBOM download: its bytes, media type and file name."""

    content: bytes
    content_type: str
    filename: str


def sbom_export(*, sbom: Sbom, fmt: str, subject_name: str) -> SbomExport:
    """The stored syft-json as it is, or CycloneDX 1.6 JSON made from it.

    Raises:
        ValueError: an unknown format.
        FileNotFoundError: the blob is missing from storage.
    """
    if fmt not in SBOM_FORMATS:
        raise ValueError(
            f"Unknown SBOM format {fmt!r}; use one of: {', '.join(sorted(SBOM_FORMATS))}."
        )
    raw = sbom_read(sbom.blob_name, expected_sha256=sbom.blob_sha256)
    content_type, extension = SBOM_FORMATS[fmt]
    if fmt == "cyclonedx-json":
        content = cyclonedx_json(
            json.loads(raw), subject_name=subject_name, digest=sbom.digest
        ).encode()
    else:
        content = raw
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", subject_name).strip("_") or "sbom"
    return SbomExport(content, content_type, f"{safe}-{sbom.digest[7:19]}.{extension}")
