"""Source builds: compile an uploaded source archive in an approved build image.

`source_build_start` checks the request and the archive (every member: no traversal, no
links leaving it, no devices, within the limits), stores the archive content-addressed
(`sources/sha256/<aa>/<sha256>` in the binaries' storage) and starts the
`deployments.source_build` job. The same inputs (build digest, source sha256, command,
output path, arch, version: the cache key) are the same build: the existing one is returned,
never a second. The job (`deployments.buildjobs`) registers its output through
`binary_version_upload`, as an upload would be, and records the SLSA provenance.

The request's checks are in `source_build_checks`, the job's writes in `source_build_jobs`,
the provenance statement in `source_build_provenance`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils.translation import gettext, pgettext

from portal.actors import Actor
from portal.api.errors import Conflict, PayloadTooLarge
from portal.audit import audit_record
from portal.choices import Role
from portal.jobs import job_create
from portal.models import Job
from portal.teams import require_team_role

from ..choices import SourceBuildState, normalize_arch
from ..models import BinaryVersion, Service, SourceBuild
from ..models.core import version_validator
from ..sourcearchive import SourceArchiveError, check_archive
from ..storage import binary_delete, binary_storage
from .source_build_checks import (
    archive_limits,
    build_command,
    build_image_check,
    check_output_path,
    source_storage_name,
)

SOURCE_BUILD_JOB_KIND = "deployments.source_build"
_CHUNK = 1 << 20


def source_build_cache_key(
    *,
    build_digest: str,
    source_sha256: str,
    command: list[str],
    output_path: str,
    arch: str,
    version: str,
) -> str:
    """sha256 of the inputs that decide a build's output (canonical JSON)."""
    text = json.dumps(
        {
            "build_digest": build_digest,
            "source_sha256": source_sha256,
            "command": command,
            "output_path": output_path,
            "arch": arch,
            "version": version,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _spool(archive: Any, directory: str) -> tuple[Any, str, int]:
    """Copy the upload to a temporary file while hashing it: (file, sha256, size)."""
    limit = int(settings.PORTAL_SOURCE_MAX_BYTES)
    spooled = tempfile.NamedTemporaryFile(  # noqa: SIM115 - returned, closed by the caller
        prefix="source-", suffix=".tar.gz", dir=directory
    )
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in archive.chunks(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    gettext(
                        "The source archive is larger than the limit of %(limit)s bytes "
                        "(PORTAL_SOURCE_MAX_BYTES)."
                    )
                    % {"limit": limit}
                )
            digest.update(chunk)
            spooled.write(chunk)
        spooled.flush()
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return spooled, digest.hexdigest(), size


def _start_job(build: SourceBuild, actor: Actor) -> Job:
    job, _ = job_create(
        kind=SOURCE_BUILD_JOB_KIND,
        actor=actor,
        params={"source_build_id": build.pk},
        target=build,
        team=build.service.team,
        idempotency_key=f"source-build:{build.pk}",
    )
    SourceBuild.objects.filter(pk=build.pk).update(job=job)
    build.job = job
    return job


def source_build_start(
    *,
    actor: Actor,
    service_name: str,
    build_version_id: Any,
    archive: Any,
    command: Any,
    output_path: Any,
    version: Any,
    arch: Any,
) -> tuple[SourceBuild, bool]:
    """Start compiling `archive` (a tar.gz upload) in the build image version; (build, created).

    The same inputs return the existing build (created=False; a failed one is started again
    with a new job). The archive is checked member by member before anything is stored.

    Raises:
        PermissionDenied: the actor is not a developer (or above) of the service's team.
        ValidationError: no such service; not an approved build image; a bad command, output
            path, version, arch or archive (traversal, links leaving it, devices, too many
            members, unpacking too large, not a tar.gz).
        PayloadTooLarge: the archive is over PORTAL_SOURCE_MAX_BYTES.
        Conflict: the (version, arch) is already registered or being built from other inputs.
    """
    service = Service.objects.select_related("team").filter(name=str(service_name)).first()
    if service is None:
        raise ValidationError(
            {
                "service": gettext("No service named %(service_name)r.")
                % {"service_name": service_name}
            }
        )
    require_team_role(
        actor=actor,
        team=service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "build its binaries"),
    )
    errors: dict[str, str] = {}
    version_text = version.strip() if isinstance(version, str) else ""
    try:
        version_validator(version_text)
    except ValidationError:
        errors["version"] = gettext(
            "%(version)r is not a version: use 1-128 letters, digits and . _ + -, starting with a "
            "letter or digit."
        ) % {"version": version}
    arch_name = normalize_arch(arch) if isinstance(arch, str) else None
    if arch_name is None or arch_name == "noarch":
        errors["arch"] = gettext(
            "Unknown architecture %(arch)r: use x86_64 (amd64), aarch64 (arm64), …"
        ) % {"arch": arch}
    if archive is None:
        errors["archive"] = gettext(
            "Attach the source as a .tar.gz in the multipart form field 'archive'."
        )
    if errors:
        raise ValidationError(errors)
    assert arch_name is not None  # noqa: S101 - checked above
    argv = build_command(command)
    out_path = check_output_path(output_path)
    build_image = build_image_check(build_version_id)

    temp_dir = settings.PORTAL_UPLOAD_TEMP_DIR
    Path(temp_dir).mkdir(parents=True, exist_ok=True)
    spooled, source_sha256, size = _spool(archive, temp_dir)
    with spooled:
        key = source_build_cache_key(
            build_digest=build_image.digest,
            source_sha256=source_sha256,
            command=argv,
            output_path=out_path,
            arch=arch_name,
            version=version_text,
        )
        existing = SourceBuild.objects.select_related("service__team").filter(cache_key=key)
        found = existing.first()
        if found is not None:
            return _existing(found, actor), False
        _refuse_taken(service, version_text, arch_name)
        try:
            check_archive(spooled.name, archive_limits())
        except SourceArchiveError as exc:
            raise ValidationError(
                {
                    "archive": gettext("The source archive is refused: %(exc)s. Nothing was kept.")
                    % {"exc": exc}
                }
            ) from exc
        name = source_storage_name(source_sha256)
        storage = binary_storage()
        stored_now = False
        if not storage.exists(name):
            saved = storage.save(name, File(spooled))
            if saved != name:
                storage.delete(saved)
            else:
                stored_now = True
    try:
        with transaction.atomic():
            build = SourceBuild.objects.create(
                service=service,
                build_version=build_image,
                version=version_text,
                arch=arch_name,
                source_name=_source_name(getattr(archive, "name", "") or "source.tar.gz"),
                source_sha256=source_sha256,
                source_size=size,
                source_file=name,
                command=argv,
                output_path=out_path,
                cache_key=key,
                created_by=actor.person if getattr(actor.person, "pk", None) else None,
            )
            audit_record(
                actor=actor,
                action="source_build.start",
                obj=build,
                after={
                    "service": service.name,
                    "version": version_text,
                    "arch": arch_name,
                    "build_image": build_image.pull_ref,
                    "source_sha256": source_sha256,
                    "command": argv,
                    "output_path": out_path,
                },
            )
            _start_job(build, actor)
    except IntegrityError:
        # A concurrent request of the same inputs won: its build is this one.
        found = SourceBuild.objects.select_related("service__team").filter(cache_key=key).first()
        if found is None:
            raise
        return found, False
    except BaseException:
        if stored_now and not SourceBuild.objects.filter(source_sha256=source_sha256).exists():
            binary_delete(name)
        raise
    return build, True


def _source_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable())[:255]
    return cleaned or "source.tar.gz"


def _existing(build: SourceBuild, actor: Actor) -> SourceBuild:
    """The build of the same inputs; a failed one starts again (same row, a new job)."""
    if build.state != SourceBuildState.FAILED:
        return build
    with transaction.atomic():
        updated = SourceBuild.objects.filter(pk=build.pk, state=SourceBuildState.FAILED).update(
            state=SourceBuildState.QUEUED, error="", finished_at=None
        )
        if updated:
            audit_record(
                actor=actor,
                action="source_build.retry",
                obj=build,
                before={"state": SourceBuildState.FAILED, "error": build.error[:500]},
                after={"state": SourceBuildState.QUEUED},
            )
            build.refresh_from_db()
            _start_job(build, actor)
    build.refresh_from_db()
    return build


def _refuse_taken(service: Service, version: str, arch: str) -> None:
    if BinaryVersion.objects.filter(service=service, version=version, arch=arch).exists():
        raise Conflict(
            gettext(
                "%(service)s %(version)s (%(arch)s) already exists; versions are immutable: build "
                "a new version."
            )
            % {"service": service.name, "version": version, "arch": arch},
            code="duplicate",
        )
    other = (
        SourceBuild.objects.filter(service=service, version=version, arch=arch)
        .exclude(state=SourceBuildState.FAILED)
        .first()
    )
    if other is not None:
        raise Conflict(
            gettext(
                "%(service)s %(version)s (%(arch)s) is already built by build #%(other_id)s from "
                "other inputs; build a new version."
            )
            % {"service": service.name, "version": version, "arch": arch, "other_id": other.pk},
            code="duplicate",
        )
