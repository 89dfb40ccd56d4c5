"""Writes of binary versions' OCI artifacts: push one (a job), record one, check one.

An artifact is what the push job makes: `<catalog registry host>/binaries/<service>@sha256:…`
whose image config carries `SHA256_LABEL` = the binary's sha256. An upload that names an
`artifact_ref` is checked here too (`binaries.binary_version_upload`).
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext, pgettext

from images.models import Registry
from images.registry import RegistryError, RegistryNotFound, RegistryUnavailable
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role
from portal.jobs import job_create
from portal.models import Job
from portal.teams import require_team_role
from portal.templatetags.portal_i18n import status_label

from ..choices import BinaryState
from ..models import BinaryVersion
from ._common import PINNED_REF

ARTIFACT_JOB_KIND = "deployments.push_artifact"
ARTIFACT_REPOSITORY = "binaries"
SHA256_LABEL = "io.baseimage.portal.binary-sha256"
"""The label the push job puts on an artifact: the sha256 of the binary inside."""
_ARTIFACT_REF = re.compile(r"^(?P<host>[^/@]+)/(?P<repo>[^@:]+)@(?P<digest>sha256:[0-9a-f]{64})\Z")


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
