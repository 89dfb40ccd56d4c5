"""Source builds: compile an uploaded source archive in an approved build image.

`source_build_start` checks the request and the archive (every member: no traversal, no
links leaving it, no devices, within the limits), stores the archive content-addressed
(`sources/sha256/<aa>/<sha256>` in the binaries' storage) and starts the
`deployments.source_build` job. The same inputs (build digest, source sha256, command,
output path, arch, version: the cache key) are the same build: the existing one is returned,
never a second. The job (`deployments.buildjobs`) registers its output through
`binary_version_upload`, as an upload would be, and records the SLSA provenance here.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext

from images.choices import ImageKind, VersionState
from images.models import ImageVersion
from portal.actors import Actor
from portal.api.errors import Conflict, PayloadTooLarge
from portal.audit import audit_record
from portal.choices import Role
from portal.jobs import job_create
from portal.models import Job
from portal.teams import require_team_role
from portal.templatetags.portal_i18n import status_label

from ..choices import SourceBuildState, normalize_arch
from ..models import BinaryVersion, Service, SourceBuild
from ..models.core import version_validator
from ..sourcearchive import ArchiveLimits, SourceArchiveError, check_archive
from ..storage import binary_delete, binary_storage

SOURCE_BUILD_JOB_KIND = "deployments.source_build"
SOURCE_PREFIX = "sources/sha256"
SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
INTOTO_STATEMENT = "https://in-toto.io/Statement/v1"
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_OUTPUT_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+/-]{0,299}\Z")
_CHUNK = 1 << 20
MAX_COMMAND_ARGS = 256
MAX_COMMAND_BYTES = 64 * 1024


def source_storage_name(sha256: str) -> str:
    """`sources/sha256/<aa>/<sha256>`: where a source archive is stored."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{SOURCE_PREFIX}/{sha256[:2]}/{sha256}"


def archive_limits() -> ArchiveLimits:
    """What a source archive may unpack to (PORTAL_SOURCE_MAX_ENTRIES, _MAX_UNPACKED_BYTES)."""
    return ArchiveLimits(
        max_entries=int(settings.PORTAL_SOURCE_MAX_ENTRIES),
        max_bytes=int(settings.PORTAL_SOURCE_MAX_UNPACKED_BYTES),
    )


def build_command(command: Any) -> list[str]:
    """The argv of a build: a list of strings as it is, a string as `/bin/sh -c <string>`.

    Raises:
        ValidationError: empty, not strings, NUL bytes, or too long.
    """
    if isinstance(command, str):
        if not command.strip():
            raise ValidationError(
                {"command": gettext_lazy("Give the build command (a list or a string).")}
            )
        argv = ["/bin/sh", "-c", command]
    elif isinstance(command, list | tuple) and command:
        if not all(isinstance(item, str) for item in command):
            raise ValidationError(
                {"command": gettext_lazy("The command must be a list of strings.")}
            )
        argv = list(command)
        if not argv[0]:
            raise ValidationError(
                {"command": gettext_lazy("The command's program (first item) is empty.")}
            )
    else:
        raise ValidationError(
            {
                "command": gettext(
                    "Give the build command: a non-empty list of strings, or a string."
                )
            }
        )
    if any("\0" in item for item in argv):
        raise ValidationError({"command": gettext_lazy("The command contains a NUL byte.")})
    if len(argv) > MAX_COMMAND_ARGS or sum(len(item) for item in argv) > MAX_COMMAND_BYTES:
        raise ValidationError(
            {
                "command": gettext(
                    "The command is too long (at most %(max_args)s arguments, 64 KiB)."
                )
                % {"max_args": MAX_COMMAND_ARGS}
            }
        )
    return argv


def check_output_path(path: Any) -> str:
    """A relative path under /out without `..` (`bin/app`).

    Raises:
        ValidationError: absolute, `..`, empty or odd characters.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValidationError(
            {"output_path": gettext_lazy("Give the output's path under /out (e.g. app).")}
        )
    text: str = path.strip()
    path = text
    if path.startswith("/"):
        raise ValidationError(
            {
                "output_path": gettext(
                    "%(path)r is absolute: give a path relative to /out (e.g. app)."
                )
                % {"path": path}
            }
        )
    parts = path.split("/")
    if ".." in parts or "." in parts or "" in parts:
        raise ValidationError(
            {
                "output_path": gettext(
                    "%(path)r must stay under /out: no '..', '.' or empty segments."
                )
                % {"path": path}
            }
        )
    if not _OUTPUT_PATH.match(path):
        raise ValidationError(
            {
                "output_path": gettext("%(path)r: use letters, digits and . _ + - / (at most 300).")
                % {"path": path}
            }
        )
    return text


def build_image_check(build_version_id: Any) -> ImageVersion:
    """The approved build image version `build_version_id`, or 400 "not an approved build
    image" (missing, a runtime image, or not approved)."""
    version = None
    if isinstance(build_version_id, int) or (
        isinstance(build_version_id, str) and build_version_id.strip().isdigit()
    ):
        version = (
            ImageVersion.objects.select_related("base_image", "registry")
            .filter(pk=int(build_version_id))
            .first()
        )
    if version is None:
        raise ValidationError(
            {
                "build_image_version": gettext(
                    "%(build_version_id)r is not an approved build image: no such image version."
                )
                % {"build_version_id": build_version_id}
            }
        )
    if version.base_image.kind != ImageKind.BUILD:
        raise ValidationError(
            {
                "build_image_version": gettext(
                    "%(version)s is not an approved build image: it is a %(kind)s image; compile "
                    "in a build image (build/...)."
                )
                % {"version": version, "kind": status_label(version.base_image.kind)}
            }
        )
    if version.state != VersionState.APPROVED:
        raise ValidationError(
            {
                "build_image_version": gettext(
                    "%(version)s is not an approved build image: it is %(state)s."
                )
                % {"version": version, "state": status_label(version.state)}
            }
        )
    return version


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


# --- the job's writes -------------------------------------------------------------------


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


def slsa_provenance(
    *,
    build: SourceBuild,
    binary: BinaryVersion,
    job_id: int,
    started_on: datetime,
    finished_on: datetime,
) -> dict[str, Any]:
    """The in-toto Statement v1 with the SLSA v1 provenance of `binary` built by `build`."""
    image = build.build_version
    portal = settings.PORTAL_URL.rstrip("/")
    return {
        "_type": INTOTO_STATEMENT,
        "subject": [{"name": binary.filename, "digest": {"sha256": binary.sha256}}],
        "predicateType": SLSA_PREDICATE,
        "predicate": {
            "buildDefinition": {
                "buildType": f"{portal}/build-types/source-build/v1",
                "externalParameters": {
                    "command": list(build.command),
                    "output_path": build.output_path,
                    "source": {
                        "name": build.source_name,
                        "digest": {"sha256": build.source_sha256},
                    },
                    "source_sha256": build.source_sha256,
                    "build_image": image.pull_ref,
                    "service": build.service.name,
                    "version": build.version,
                    "arch": build.arch,
                },
                "internalParameters": {
                    "network": "none",
                    "workdir": "/src",
                    "source_mount": "/src (read-only)",
                    "output_mount": "/out",
                    "cache_key": build.cache_key,
                },
                "resolvedDependencies": [
                    {
                        "uri": f"oci://{image.pull_ref}",
                        "name": f"{image.base_image.name}:{image.tag}",
                        "digest": {"sha256": image.digest.removeprefix("sha256:")},
                    },
                    {
                        "uri": f"{portal}/{build.source_file}",
                        "name": build.source_name,
                        "digest": {"sha256": build.source_sha256},
                    },
                ],
            },
            "runDetails": {
                "builder": {"id": f"{portal}/builders/buildah-source-build/v1"},
                "metadata": {
                    "invocationId": str(job_id),
                    "startedOn": _rfc3339(started_on),
                    "finishedOn": _rfc3339(finished_on),
                },
            },
        },
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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
