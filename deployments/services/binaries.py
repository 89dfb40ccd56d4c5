"""Writes of binary versions: upload (check, store by hash, register) and yank.

The OCI artifact push and record are in `binary_artifacts`, the ELF facts and their backfill
in `binary_facts`, retention (in use, purge) in `binary_retention`.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils.translation import gettext, pgettext

from images.choices import ImageKind, VersionState
from images.models import ImageVersion
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role
from portal.jobs import IllegalTransition
from portal.teams import require_team_role
from portal.templatetags.portal_i18n import status_label

from ..choices import BinaryState, normalize_arch
from ..elf import BinaryAnalysisError, analyze_binary
from ..models import BinaryVersion, Service
from ..storage import binary_delete, binary_store
from ._common import PINNED_REF
from .binary_artifacts import _verify_artifact_ref
from .binary_facts import binary_facts_fields
from .scans import binary_version_scan_after_upload

_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}\Z")
_COMMIT = re.compile(r"^[A-Za-z0-9._/-]{0,64}\Z")


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
