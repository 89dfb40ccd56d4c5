"""Scans of binary versions: syft on the stored file (Go and Rust binaries carry their module
lists), recorded as an `images.Sbom` with subject `binary` and digest `sha256:<file sha256>`
through the images service, so a volume-mode binary's own dependencies get findings too."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, pgettext

from images.choices import ScanState
from images.models import Sbom
from images.services.scans import scan_idempotency_key
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role
from portal.jobs import job_create
from portal.models import Job
from portal.teams import require_team_role

from ..choices import BinaryState
from ..models import BinaryVersion

BINARY_SCAN_JOB_KIND = "deployments.scan_binary"
logger = logging.getLogger(__name__)
ERROR_CHARS = 4000


def binary_digest(binary: BinaryVersion) -> str:
    """The scan digest of a binary version: `sha256:<file sha256>`."""
    return f"sha256:{binary.sha256}"


def binary_version_scan_start(*, binary_id: int, actor: Actor, force: bool = False) -> Job:
    """Queue the scan job of a binary version (202 semantics); return the job.

    One live scan per file digest: asking again while one runs returns that job.

    Raises:
        BinaryVersion.DoesNotExist: no such binary version.
        PermissionDenied: not a developer (or above) of the service's team (as for yank).
        Conflict: the version is purged (its file is gone).
    """
    binary = BinaryVersion.objects.select_related("service__team").get(pk=binary_id)
    require_team_role(
        actor=actor,
        team=binary.service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "scan its binaries"),
    )
    if binary.state == BinaryState.PURGED:
        raise Conflict(
            gettext("%(binary)s is purged: its file is gone, nothing to scan.")
            % {"binary": binary},
            code="purged",
        )
    with transaction.atomic():
        job, created = job_create(
            kind=BINARY_SCAN_JOB_KIND,
            actor=actor,
            params={"binary_id": binary.pk, "force": bool(force)},
            target=binary,
            team=binary.service.team,
            idempotency_key=scan_idempotency_key(binary_digest(binary)),
        )
        if created:
            BinaryVersion.objects.filter(pk=binary.pk).exclude(
                scan_state=ScanState.SCANNING
            ).update(scan_state=ScanState.QUEUED)
            audit_record(
                actor=actor,
                action="binary_version.scan",
                obj=binary,
                before={"scan_state": binary.scan_state},
                after={"scan_state": ScanState.QUEUED, "job": job.pk, "force": bool(force)},
            )
    return job


def binary_version_scan_after_upload(*, binary_id: int, actor: Actor) -> None:
    """Queue the scan of a newly uploaded version (called on the upload's commit).

    The upload is already stored: a scan that cannot be queued (the broker is down) is
    logged and leaves the version `unscanned` (POST …/scan/ later), never fails the upload."""
    try:
        binary_version_scan_start(binary_id=binary_id, actor=actor)
    except Exception:
        logger.exception("could not queue the scan of binary version %s", binary_id)


def binary_version_scan_mark_scanning(*, binary_id: int) -> None:
    """The job started."""
    BinaryVersion.objects.filter(pk=binary_id).update(scan_state=ScanState.SCANNING)


def binary_version_scan_attach(*, binary_id: int, sbom: Sbom) -> None:
    """The file was scanned: link its SBOM."""
    BinaryVersion.objects.filter(pk=binary_id).update(
        sbom=sbom, scan_state=ScanState.SCANNED, scan_error="", scanned_at=timezone.now()
    )


def binary_version_scan_failed(*, binary_id: int, error: str) -> None:
    """A failed scan keeps the SBOM the version had (if any) and says why."""
    BinaryVersion.objects.filter(pk=binary_id).update(
        scan_state=ScanState.FAILED,
        scan_error=(error or gettext_noop("The scan failed."))[:ERROR_CHARS],
    )


def binary_scan_job_failed(job: Job) -> None:
    """`on_failure` of the binary scan job kind (failed, reaped or cancelled)."""
    binary_id = job.params.get("binary_id")
    if binary_id:
        binary_version_scan_failed(
            binary_id=int(binary_id),
            error=job.error or f"The scan job #{job.pk} was {job.state}.",
        )
