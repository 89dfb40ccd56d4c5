"""Source builds: the writes of the `deployments.source_build` job (`deployments.buildjobs`).

queued → running (`source_build_mark_running`), → failed (`source_build_failed`, also the
job kind's on_failure), → succeeded (`source_build_succeeded`: the output is registered
through `binary_version_upload`, as an upload would be, with the SLSA provenance).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.models import Job

from ..choices import SourceBuildState
from ..models import BinaryVersion, SourceBuild
from .source_build_provenance import slsa_provenance

_CHUNK = 1 << 20


def source_build_mark_running(*, build_id: int, job: Job) -> SourceBuild:
    """queued → running (a retried job of a running build keeps running)."""
    with transaction.atomic():
        SourceBuild.objects.filter(
            pk=build_id, state__in=[SourceBuildState.QUEUED, SourceBuildState.RUNNING]
        ).update(state=SourceBuildState.RUNNING, job=job)
        return SourceBuild.objects.select_related(
            "service__team", "build_version__base_image", "build_version__registry"
        ).get(pk=build_id)


def source_build_failed(*, build_id: int, error: str) -> None:
    """The build did not produce a binary: failed, with the error (nothing is registered)."""
    SourceBuild.objects.filter(
        pk=build_id, state__in=[SourceBuildState.QUEUED, SourceBuildState.RUNNING]
    ).update(state=SourceBuildState.FAILED, error=error[:20_000], finished_at=timezone.now())


def source_build_job_failed(job: Job) -> None:
    """on_failure of the job kind: the build fails with the job's error (however it ended)."""
    build_id = (job.params or {}).get("source_build_id")
    if isinstance(build_id, int):
        source_build_failed(build_id=build_id, error=job.error or f"job {job.state}")


class BuiltFile(File):  # type: ignore[type-arg]
    """A compiled output as `binary_version_upload` takes an upload: a file on disk that
    knows its sha256 and size."""

    def __init__(self, path: Path, name: str, sha256: str) -> None:
        super().__init__(path.open("rb"), name=name)
        self.path = path
        self.sha256 = sha256
        self.size = path.stat().st_size

    def temporary_file_path(self) -> str:
        return str(self.path)


def source_build_succeeded(
    *,
    build_id: int,
    output: Path,
    job_id: int,
    started_on: datetime,
    actor: Actor,
) -> BinaryVersion:
    """Register `output` as the build's BinaryVersion (as an upload: ELF facts, sha256,
    storage), `built_in` the build image, with the SLSA provenance; the build succeeds.

    Raises:
        ValidationError / Conflict: the upload's checks refuse the output (e.g. its ELF
            machine is not the build's arch); nothing is registered then.
    """
    from .binaries import binary_version_upload

    build = SourceBuild.objects.select_related(
        "service__team", "build_version__base_image", "build_version__registry", "created_by"
    ).get(pk=build_id)
    digest = hashlib.sha256()
    with output.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    name = output.name
    upload = BuiltFile(output, name, sha256)
    portal = settings.PORTAL_URL.rstrip("/")
    try:
        with transaction.atomic():
            binary, _ = binary_version_upload(
                actor=actor,
                service=build.service,
                upload=upload,
                version=build.version,
                arch=build.arch,
                sha256=sha256,
                build_url=f"{portal}/api/v1/services/{build.service.name}/builds/{build.pk}/",
            )
            if binary.sha256 != sha256:  # pragma: no cover - the upload refuses other bytes
                raise Conflict(gettext("%(binary)s holds other bytes.") % {"binary": binary})
            BinaryVersion.objects.filter(pk=binary.pk).update(
                built_in=build.build_version,
                uploaded_by=build.created_by if build.created_by_id else None,
            )
            binary.refresh_from_db()
            provenance = slsa_provenance(
                build=build,
                binary=binary,
                job_id=job_id,
                started_on=started_on,
                finished_on=timezone.now(),
            )
            SourceBuild.objects.filter(pk=build.pk).update(
                state=SourceBuildState.SUCCEEDED,
                binary_version=binary,
                provenance=provenance,
                error="",
                finished_at=timezone.now(),
            )
            audit_record(
                actor=actor,
                action="source_build.succeeded",
                obj=build,
                after={"binary_version": binary.pk, "sha256": sha256},
            )
    finally:
        upload.close()
    return binary
