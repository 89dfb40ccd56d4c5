"""Writes of binary versions: upload, yank, OCI artifact push and record, retention purge."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext, pgettext

from images.choices import ImageKind, VersionState
from images.models import ImageVersion, Registry
from images.registry import RegistryError, RegistryNotFound, RegistryUnavailable
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role
from portal.jobs import IllegalTransition, job_create
from portal.models import Job
from portal.teams import require_team_role
from portal.templatetags.portal_i18n import status_label

from ..choices import BinaryState, normalize_arch
from ..elf import FACTS_VERSION, BinaryAnalysisError, BinaryFacts, analyze_binary
from ..models import BinaryVersion, Deployment, Release, Service
from ..storage import binary_delete, binary_storage, binary_store
from ._common import PINNED_REF
from .scans import binary_version_scan_after_upload

ARTIFACT_JOB_KIND = "deployments.push_artifact"
ARTIFACT_REPOSITORY = "binaries"
SHA256_LABEL = "io.baseimage.portal.binary-sha256"
"""The label the push job puts on an artifact: the sha256 of the binary inside."""
_ARTIFACT_REF = re.compile(r"^(?P<host>[^/@]+)/(?P<repo>[^@:]+)@(?P<digest>sha256:[0-9a-f]{64})\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}\Z")
_COMMIT = re.compile(r"^[A-Za-z0-9._/-]{0,64}\Z")


def artifact_repository(service: str) -> str:
    """The registry repository holding a service's binaries: `binaries/<service>`."""
    return f"{ARTIFACT_REPOSITORY}/{service}"


def binary_artifact_ref_problem(*, service: str, sha256: str, artifact_ref: str) -> str | None:
    """Why `artifact_ref` cannot be the OCI artifact of `service`'s binary `sha256`, or None.

    Acceptable is only what the push job makes: `<catalog registry host>/binaries/<service>
    @sha256:…`, whose image config carries `SHA256_LABEL` = `sha256`. Hosts that are not a
    catalog registry are refused before any network call.

    Raises:
        RegistryUnavailable: the registry did not answer (worth retrying).
    """
    match = _ARTIFACT_REF.match(artifact_ref)
    expected = artifact_repository(service)
    if match is None:
        return (
            f"{artifact_ref!r} is not a digest-pinned artifact reference without a tag: "
            f"<registry>/{expected}@sha256:<64 hex>"
        )
    host, repository, digest = match.group("host", "repo", "digest")
    registry = next((r for r in Registry.objects.all() if r.host == host), None)
    if registry is None:
        return f"{host} is not a catalog registry; artifacts live in the portal's registries"
    if repository != expected:
        return f"the repository is {repository}, but {service}'s artifacts live in {expected}"
    try:
        with registry.client() as client:
            config = client.image_config(repository, digest)
    except RegistryUnavailable:
        raise
    except RegistryNotFound:
        return f"{host}/{repository}@{digest} does not resolve (not found, or no longer resolves)"
    except RegistryError as exc:
        return f"it cannot be read from {host}: {exc}"
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    label = labels.get(SHA256_LABEL) if isinstance(labels, dict) else None
    if label != sha256:
        return (
            f"its {SHA256_LABEL} label is {label!r}, not this binary's sha256 {sha256}: it does "
            "not hold these bytes"
        )
    return None


def _verify_artifact_ref(*, service: str, sha256: str, artifact_ref: str) -> None:
    """Refuse (400) an `artifact_ref` that `binary_artifact_ref_problem` finds fault with."""
    try:
        problem = binary_artifact_ref_problem(
            service=service, sha256=sha256, artifact_ref=artifact_ref
        )
    except RegistryUnavailable as exc:
        problem = f"it could not be checked, the registry did not answer ({exc}); try again"
    if problem is not None:
        raise ValidationError(
            {
                "artifact_ref": gettext(
                    "artifact_ref refused: %(problem)s. Leave artifact_ref out and push the "
                    "version as an OCI artifact (POST /api/v1/binaries/<id>/artifact/)."
                )
                % {"problem": problem}
            }
        )


def _clean_filename(name: str, fallback: str) -> str:
    base = (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return base if _FILENAME.match(base) and base not in {".", ".."} else fallback


def _upload_errors(
    *, version: str, arch: str, sha256: str, commit: str, build_url: str, artifact_ref: str
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not version:
        errors["version"] = gettext("Give the version (e.g. 1.4.2 or 2024.06.01-3).")
    elif not re.match(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z", version):
        errors["version"] = gettext(
            "%(version)r is not a version: use 1-128 letters, digits and . _ + -, starting with a "
            "letter or digit."
        ) % {"version": version}
    if not arch:
        errors["arch"] = gettext(
            "Give the architecture (x86_64/amd64, aarch64/arm64, … or noarch)."
        )
    elif normalize_arch(arch) is None:
        errors["arch"] = gettext(
            "Unknown architecture %(arch)r: use x86_64 (amd64), aarch64 (arm64), …"
        ) % {"arch": arch}
    if not sha256:
        errors["sha256"] = gettext(
            "Give the file's sha256 (64 hex digits) so the upload can be checked."
        )
    elif not _SHA256.match(sha256.lower()):
        errors["sha256"] = gettext("%(sha256)r is not a sha256: expected 64 hex digits.") % {
            "sha256": sha256
        }
    if not _COMMIT.match(commit):
        errors["commit"] = gettext("A commit is at most 64 letters, digits and . _ / -.")
    if build_url:
        try:
            URLValidator(schemes=["http", "https"])(build_url)
        except ValidationError:
            errors["build_url"] = gettext("%(build_url)r is not an http(s) URL.") % {
                "build_url": build_url
            }
    if artifact_ref and not PINNED_REF.match(artifact_ref):
        errors["artifact_ref"] = gettext(
            "artifact_ref must be a digest-pinned reference: registry/repo@sha256:<64 hex>."
        )
    return errors


def _built_in_version(built_in: Any) -> ImageVersion | None:
    """The build image version `built_in` (an id) names; ValidationError when it names none."""
    if built_in is None or (isinstance(built_in, str) and not built_in.strip()):
        return None
    text = str(built_in).strip()
    if not re.match(r"^[0-9]{1,18}\Z", text):
        raise ValidationError(
            {"built_in": gettext("built_in is an image version id, not %(text)r.") % {"text": text}}
        )
    found = (
        ImageVersion.objects.select_related("base_image")
        .filter(pk=int(text), base_image__kind=ImageKind.BUILD)
        .exclude(state=VersionState.CANDIDATE)
        .first()
    )
    if found is None:
        raise ValidationError(
            {
                "built_in": gettext(
                    "No published build image version has id %(text)s (see /api/v1/versions/)."
                )
                % {"text": text}
            }
        )
    return found


def binary_facts_fields(facts: BinaryFacts) -> dict[str, Any]:
    """The BinaryVersion fields the ELF reader fills (upload and backfill alike)."""
    return {
        "file_type": facts.file_type,
        "linkage": facts.linkage,
        "interpreter": facts.interpreter,
        "needed": list(facts.needed),
        "min_glibc": facts.min_glibc,
        "libc": facts.libc,
        "machine": facts.machine,
        "elf_class": facts.elf_class,
        "runpath": list(facts.runpath),
        "version_needs": [list(pair) for pair in facts.version_needs],
        "facts_version": FACTS_VERSION,
    }


def binary_version_upload(
    *,
    actor: Actor,
    service: Service,
    upload: Any,
    version: str,
    arch: str,
    sha256: str,
    commit: str = "",
    build_url: str = "",
    artifact_ref: str = "",
    built_in: Any = None,
) -> tuple[BinaryVersion, bool]:
    """Record an uploaded binary: check it, store it by hash, create the row; (row, created).

    `upload` is the streamed `HashedUploadedFile` (its `sha256` and `size` were computed while
    it was written). The file and the row appear together or not at all: the file is stored
    first, and removed again when the row cannot be written (unless another row uses the
    same bytes). Re-sending an existing (version, arch) with the same bytes returns the
    existing row (created=False).

    Raises:
        PermissionDenied: the actor is not a developer (or above) of the service's team.
        ValidationError: a missing or malformed field, a checksum mismatch, a corrupt ELF
            file, or an architecture that is not the file's.
        Conflict: the (version, arch) already exists with other bytes.
    """
    require_team_role(
        actor=actor,
        team=service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "upload its binaries"),
    )
    version, arch, sha256 = version.strip(), arch.strip(), sha256.strip()
    commit, build_url, artifact_ref = commit.strip(), build_url.strip(), artifact_ref.strip()
    errors = _upload_errors(
        version=version,
        arch=arch,
        sha256=sha256,
        commit=commit,
        build_url=build_url,
        artifact_ref=artifact_ref,
    )
    if upload is None:
        errors["file"] = gettext("Attach the binary as the multipart form field 'file'.")
    try:
        build_version = _built_in_version(built_in)
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    claimed = sha256.lower()
    actual = upload.sha256
    if claimed != actual:
        raise ValidationError(
            {
                "sha256": gettext(
                    "Checksum mismatch: you sent %(claimed)s, the received file's sha256 is "
                    "%(actual)s (%(size)s bytes). Nothing was stored."
                )
                % {"claimed": claimed, "actual": actual, "size": upload.size}
            }
        )
    try:
        facts = analyze_binary(upload.temporary_file_path())
    except BinaryAnalysisError as exc:
        raise ValidationError(
            {"file": gettext("Cannot read this binary: %(exc)s.") % {"exc": exc}}
        ) from exc
    arch_name = normalize_arch(arch) or arch
    if facts.is_elf and facts.machine != arch_name:
        raise ValidationError(
            {
                "arch": gettext(
                    "The file is a %(machine)s ELF binary, but arch says %(arch)s (%(arch_name)s)."
                )
                % {"machine": facts.machine, "arch": arch, "arch_name": arch_name}
            }
        )
    existing = BinaryVersion.objects.filter(
        service=service, version=version, arch=arch_name
    ).first()
    if existing is not None:
        return _same_or_conflict(existing, actual)
    if artifact_ref:  # M3: only an artifact of these very bytes, in a catalog registry
        _verify_artifact_ref(service=service.name, sha256=actual, artifact_ref=artifact_ref)

    filename = _clean_filename(upload.name, service.name)
    name, stored_now = binary_store(sha256=actual, content=upload)
    row = BinaryVersion(
        service=service,
        version=version,
        arch=arch_name,
        filename=filename,
        file=name,
        sha256=actual,
        size=upload.size,
        **binary_facts_fields(facts),
        built_in=build_version,
        commit=commit,
        build_url=build_url,
        artifact_ref=artifact_ref,
        uploaded_by=actor.user if actor.user is not None and actor.user.pk else None,
        uploaded_by_token=actor.token,
    )
    try:
        row.full_clean(validate_constraints=False)
        with transaction.atomic():
            row.save()
            audit_record(
                actor=actor,
                action="binary_version.upload",
                obj=row,
                after={
                    "service": service.name,
                    "version": version,
                    "arch": arch_name,
                    "sha256": actual,
                    "size": upload.size,
                    "file_type": facts.file_type,
                    "linkage": facts.linkage,
                    "min_glibc": facts.min_glibc,
                    "built_in": build_version.pk if build_version is not None else None,
                },
            )
    except IntegrityError:
        _forget_file(name, actual, stored_now)
        existing = BinaryVersion.objects.filter(
            service=service, version=version, arch=arch_name
        ).first()
        if existing is None:
            raise
        return _same_or_conflict(existing, actual)
    except BaseException:
        _forget_file(name, actual, stored_now)
        raise
    # Every upload is scanned (syft on the stored file), once the row is committed.
    transaction.on_commit(partial(binary_version_scan_after_upload, binary_id=row.pk, actor=actor))
    return row, True


def _same_or_conflict(existing: BinaryVersion, sha256: str) -> tuple[BinaryVersion, bool]:
    if existing.sha256 == sha256:
        return existing, False
    raise Conflict(
        gettext(
            "%(service)s %(version)s (%(arch)s) already exists with sha256 %(sha256)s; versions "
            "are immutable: upload a new version."
        )
        % {
            "service": existing.service.name,
            "version": existing.version,
            "arch": existing.arch,
            "sha256": existing.sha256,
        },
        code="duplicate",
    )


def _forget_file(name: str, sha256: str, stored_now: bool) -> None:
    """Remove a file stored for a row that was not written (unless a row uses the bytes)."""
    if (
        stored_now
        and not BinaryVersion.objects.filter(sha256=sha256)
        .exclude(state=BinaryState.PURGED)
        .exists()
    ):
        binary_delete(name)


def binary_version_yank(*, actor: Actor, binary_version: BinaryVersion) -> BinaryVersion:
    """Hide a version from new releases; releases that use it keep working."""
    require_team_role(
        actor=actor,
        team=binary_version.service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "yank its binaries"),
    )
    with transaction.atomic():
        updated = BinaryVersion.objects.filter(
            pk=binary_version.pk, state=BinaryState.ACTIVE
        ).update(state=BinaryState.YANKED)
        if not updated:
            binary_version.refresh_from_db(fields=["state"])
            raise IllegalTransition(
                gettext("%(binary_version)s is %(state)s; only active versions can be yanked.")
                % {"binary_version": binary_version, "state": status_label(binary_version.state)}
            )
        binary_version.state = BinaryState.YANKED
        audit_record(
            actor=actor,
            action="binary_version.yank",
            obj=binary_version,
            before={"state": BinaryState.ACTIVE},
            after={"state": BinaryState.YANKED},
        )
    return binary_version


def binary_version_artifact_push(
    *, actor: Actor, binary_version: BinaryVersion
) -> tuple[Job, bool]:
    """Start the job that pushes the binary to the registry as an OCI image; (job, created).

    One live push per binary version (an idempotency key): asking again while one is queued
    or running returns that job. The job does nothing when `artifact_ref` is already set and
    its digest still resolves.

    Raises:
        PermissionDenied: the actor is not a developer (or above) of the service's team.
        Conflict: the version is yanked or purged (its bytes are not for new releases).
    """
    service = binary_version.service
    require_team_role(
        actor=actor,
        team=service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "push its binaries"),
    )
    if binary_version.state != BinaryState.ACTIVE:
        raise Conflict(
            gettext(
                "%(binary_version)s is %(state)s; only active versions can be pushed as an OCI "
                "artifact."
            )
            % {"binary_version": binary_version, "state": status_label(binary_version.state)},
            code="not_active",
        )
    return job_create(
        kind=ARTIFACT_JOB_KIND,
        actor=actor,
        params={"binary_version_id": binary_version.pk},
        target=binary_version,
        team=service.team,
        idempotency_key=f"binary-artifact:{binary_version.pk}",
    )


def binary_version_artifact_set(
    *, actor: Actor, binary_version: BinaryVersion, artifact_ref: str
) -> BinaryVersion:
    """Record the digest-pinned OCI artifact (`host/binaries/<service>@sha256:…`) holding
    the binary (the push job's result).

    Raises:
        PermissionDenied: the actor is not a developer (or above) of the service's team.
        ValidationError: `artifact_ref` is not digest-pinned, or not an artifact of these
            bytes in a catalog registry (`binary_artifact_ref_problem`).
    """
    require_team_role(
        actor=actor,
        team=binary_version.service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "record its artifacts"),
    )
    if not PINNED_REF.match(artifact_ref):
        raise ValidationError(
            {
                "artifact_ref": gettext(
                    "artifact_ref must be a digest-pinned reference: registry/repo@sha256:<64 "
                    "hex>, got %(artifact_ref)r."
                )
                % {"artifact_ref": artifact_ref}
            }
        )
    _verify_artifact_ref(
        service=binary_version.service.name, sha256=binary_version.sha256, artifact_ref=artifact_ref
    )
    with transaction.atomic():
        before = (
            BinaryVersion.objects.select_for_update()
            .filter(pk=binary_version.pk)
            .values_list("artifact_ref", flat=True)
            .get()
        )
        BinaryVersion.objects.filter(pk=binary_version.pk).update(artifact_ref=artifact_ref)
        binary_version.artifact_ref = artifact_ref
        audit_record(
            actor=actor,
            action="binary_version.artifact",
            obj=binary_version,
            before={"artifact_ref": before},
            after={"artifact_ref": artifact_ref},
        )
    return binary_version


def binary_versions_in_use() -> set[int]:
    """Ids of binary versions a live release (newest per deployment) or a deployment uses."""
    live = Release.objects.filter(
        pk__in=Deployment.objects.annotate(last=Max("releases__id")).values("last")
    ).values_list("binary_version_id", flat=True)
    current = Deployment.objects.exclude(binary_version=None).values_list(
        "binary_version_id", flat=True
    )
    return set(live) | set(current)


def binary_versions_purge(
    *, actor: Actor, keep: int | None = None, log: Callable[[str], None] = lambda _: None
) -> dict[str, int]:
    """Retention: per service keep the newest `keep` versions plus every version in use.

    Older versions become `purged` (row kept for history) and their file is deleted unless
    a remaining version has the same bytes.
    """
    keep = settings.PORTAL_BINARY_KEEP if keep is None else keep
    in_use = binary_versions_in_use()
    purged = files = 0
    for service in Service.objects.order_by("name"):
        versions = list(
            service.binary_versions.exclude(state=BinaryState.PURGED).order_by("-created_at", "-id")
        )
        for bv in versions[keep:]:
            if bv.pk in in_use:
                continue
            with transaction.atomic():
                updated = BinaryVersion.objects.filter(pk=bv.pk, state=bv.state).update(
                    state=BinaryState.PURGED
                )
                if not updated:
                    continue
                audit_record(
                    actor=actor,
                    action="binary_version.purge",
                    obj=bv,
                    before={"state": bv.state},
                    after={"state": BinaryState.PURGED},
                )
            purged += 1
            still_used = BinaryVersion.objects.filter(sha256=bv.sha256).exclude(
                state=BinaryState.PURGED
            )
            if not still_used.exists():
                binary_delete(bv.file)
                files += 1
            log(f"purged {bv} ({bv.sha256[:12]})")
    return {"purged": purged, "files_deleted": files, "kept_in_use": len(in_use)}


BACKFILL_FACTS_JOB_KIND = "deployments.backfill_binary_facts"


def binary_facts_backfill(
    *,
    batch_size: int = 200,
    limit: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, int]:
    """Re-read the ELF facts of every stored version whose facts are older than the reader.

    Works in batches by id (`facts_version < FACTS_VERSION`, not purged); each file is copied
    from the binary storage to a temporary file, read, and its row updated. A file that is
    missing or no longer readable is counted and skipped (its row keeps its old facts).
    """
    storage = binary_storage()
    updated = skipped = 0
    last_id = 0
    while limit is None or updated + skipped < limit:
        batch = list(
            BinaryVersion.objects.filter(pk__gt=last_id, facts_version__lt=FACTS_VERSION)
            .exclude(state=BinaryState.PURGED)
            .order_by("pk")[:batch_size]
        )
        if not batch:
            break
        for row in batch:
            last_id = row.pk
            if limit is not None and updated + skipped >= limit:
                break
            try:
                with (
                    tempfile.NamedTemporaryFile(prefix="facts-") as tmp,
                    storage.open(row.file, "rb") as source,
                ):
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        tmp.write(chunk)
                    tmp.flush()
                    facts = analyze_binary(tmp.name)
            except (OSError, BinaryAnalysisError) as exc:
                skipped += 1
                log(f"skipped {row} (#{row.pk}): {exc}")
                continue
            BinaryVersion.objects.filter(pk=row.pk).update(**binary_facts_fields(facts))
            updated += 1
        log(f"backfill: {updated} updated, {skipped} skipped (up to #{last_id})")
    return {"updated": updated, "skipped": skipped}
