"""Writes of releases: render, validate and store the next one, or roll back to an old one."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils.translation import gettext, pgettext

from images.models import ImageVersion
from images.texts import message_render
from portal.actors import Actor
from portal.audit import audit_record
from portal.choices import Role
from portal.events import EventType, event_emit
from portal.middleware import current_request_id
from portal.models import AuditEntry
from portal.teams import require_team_role

from ..choices import DeliveryStrategy, DeploymentMode
from ..manifests import (
    IMAGE_VOLUME_MIN_K8S,
    ManifestError,
    ManifestInput,
    render_app_dockerfile,
    render_deployment,
)
from ..manifests.validation import validate_manifest
from ..models import BinaryVersion, Deployment, Release
from ._common import check_binary, check_runtime

_K8S_MINOR = re.compile(r"^v?(\d+)\.(\d+)")


def binary_download_url(binary: BinaryVersion) -> str:
    """The absolute URL nodes and init containers download the binary from."""
    path = reverse("api:binary-version-download", kwargs={"pk": binary.pk})
    return settings.PORTAL_URL.rstrip("/") + path


def manifest_input_for(
    *,
    deployment: Deployment,
    number: int,
    binary: BinaryVersion,
    runtime: ImageVersion,
) -> ManifestInput:
    """The renderer's plain values for a release of `deployment` (no I/O beyond reads)."""
    environment = deployment.environment
    service = deployment.service
    strategy = (
        environment.delivery_strategy if deployment.mode == DeploymentMode.VOLUME else "image"
    )
    resources = deployment.resources or {}
    return ManifestInput(
        service=service.name,
        team=service.team.name,
        environment=environment.name,
        namespace=environment.namespace,
        release=number,
        strategy=strategy,
        runtime_image=runtime.pull_ref,
        binary_version=binary.version,
        binary_sha256=binary.sha256,
        binary_filename=binary.filename,
        binary_download_url=binary_download_url(binary),
        binary_artifact_ref=binary.artifact_ref,
        app_image=deployment.app_image,
        command=tuple(deployment.command),
        args=tuple(deployment.args),
        env=tuple((item["name"], item["value"]) for item in deployment.env),
        ports=tuple(deployment.ports),
        replicas=deployment.replicas,
        cpu_request=resources.get("cpu_request", ""),
        memory_request=resources.get("memory_request", ""),
        cpu_limit=resources.get("cpu_limit", ""),
        memory_limit=resources.get("memory_limit", ""),
        hostpath_root=environment.hostpath_root,
        portal_url=settings.PORTAL_URL,
        arch="" if binary.arch == "noarch" else binary.arch,
        fetch_token_secret=environment.fetch_token_secret,
    )


def _render(m: ManifestInput, *, k8s_version: str) -> tuple[str, str, dict[str, Any]]:
    """(manifest YAML, Dockerfile, validation) or ValidationError with every problem."""
    dockerfile = ""
    manifest = ""
    try:
        if m.strategy == "image":
            dockerfile = render_app_dockerfile(
                m.runtime_image, m.binary_filename, m.command, m.args
            )
            if not m.app_image:
                return (
                    "",
                    dockerfile,
                    {
                        "valid": True,
                        "errors": [],
                        "k8s_version_used": "",
                        "note": "Image mode: build this Dockerfile and set the deployment's "
                        "app_image to get a Deployment manifest.",
                    },
                )
        manifest = render_deployment(m, k8s_version=k8s_version)
    except ManifestError as exc:
        # The renderers' errors are English templates (they run without Django): say them in
        # the reader's language.
        raise ValidationError(
            {"manifest": [message_render(error, gettext) for error in exc.errors]}
        ) from exc
    result = validate_manifest(manifest, k8s_version)
    if not result.valid:
        raise ValidationError(
            {
                "manifest": [
                    gettext("Kubernetes %(version)s strict validation failed: %(errors)s")
                    % {"version": result.k8s_version_used, "errors": "; ".join(result.errors)}
                ]
            }
        )
    return (
        manifest,
        dockerfile,
        {
            "valid": True,
            "errors": [],
            "k8s_version_used": result.k8s_version_used,
        },
    )


def _check_artifact(binary: BinaryVersion, deployment: Deployment) -> None:
    """An imageVolume release mounts the binary's OCI artifact: refuse one without it.

    Environments below Kubernetes 1.35 are left to the renderer, whose message (image
    volumes need 1.35) is the one that helps there.
    """
    environment = deployment.environment
    if (
        deployment.mode != DeploymentMode.VOLUME
        or environment.delivery_strategy != DeliveryStrategy.IMAGE_VOLUME
        or binary.artifact_ref
    ):
        return
    match = _K8S_MINOR.match(environment.k8s_version)
    if match is None or (int(match.group(1)), int(match.group(2))) < IMAGE_VOLUME_MIN_K8S:
        return
    raise ValidationError(
        {
            "binary_version": (
                gettext(
                    "%(binary)s has no OCI artifact (binary_artifact_ref), and environment "
                    "%(environment)s delivers binaries as image volumes: push it as an OCI "
                    'artifact first: POST /api/v1/binaries/%(binary_id)s/artifact/ (or "Push as '
                    'OCI artifact" on the service page), wait for the job, then create the '
                    "release again."
                )
                % {"binary": binary, "environment": environment.name, "binary_id": binary.pk}
            )
        }
    )


def release_create(
    *,
    actor: Actor,
    deployment: Deployment,
    binary_version: BinaryVersion | None = None,
    runtime_version: ImageVersion | None = None,
    rollback_of: Release | None = None,
) -> Release:
    """Render, validate and store the next release of `deployment`.

    The binary and runtime versions default to the deployment's current ones; the new
    tuple becomes the deployment's current one. A yanked or purged binary and a runtime
    version that is not approved are refused (a rollback may return to a superseded
    runtime version, never to a revoked one). Nothing is stored when rendering or strict
    validation fails.

    Raises:
        PermissionDenied: the actor is not a developer of the service's team.
        ValidationError: refused versions, bad values, or the validator's errors.
    """
    service = deployment.service
    require_team_role(
        actor=actor,
        team=service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "release this service"),
    )
    binary = binary_version or deployment.binary_version
    runtime = runtime_version or deployment.runtime_version
    if binary is None:
        raise ValidationError(
            {
                "binary_version": gettext(
                    "%(deployment)s has no binary version yet: give binary_version."
                )
                % {"deployment": deployment}
            }
        )
    check_binary(binary, service)
    check_runtime(runtime, allow_superseded=rollback_of is not None)
    environment = deployment.environment
    _check_artifact(binary, deployment)
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        number = (locked.releases.aggregate(n=Max("number"))["n"] or 0) + 1
        m = manifest_input_for(deployment=deployment, number=number, binary=binary, runtime=runtime)
        manifest, dockerfile, validation = _render(m, k8s_version=environment.k8s_version)
        release = Release(
            deployment=deployment,
            number=number,
            strategy=m.strategy,
            binary_version=binary,
            runtime_version=runtime,
            binary_sha256=binary.sha256,
            base_digest=runtime.digest,
            manifest_yaml=manifest,
            dockerfile=dockerfile,
            manifest_sha256=hashlib.sha256(manifest.encode()).hexdigest() if manifest else "",
            k8s_version=environment.k8s_version,
            validation=validation,
            created_by=actor.user if actor.user is not None and actor.user.pk else None,
            created_by_token=actor.token,
            rollback_of=rollback_of,
        )
        release.full_clean(validate_constraints=False)
        release.save()
        before = {
            "binary_version": locked.binary_version_id,
            "runtime_version": locked.runtime_version_id,
        }
        Deployment.objects.filter(pk=deployment.pk).update(
            binary_version=binary, runtime_version=runtime
        )
        deployment.binary_version, deployment.runtime_version = binary, runtime
        audit_record(
            actor=actor,
            action="release.create",
            obj=release,
            before=before,
            after={
                "number": number,
                "binary_version": binary.pk,
                "runtime_version": runtime.pk,
                "binary_sha256": binary.sha256,
                "base_digest": runtime.digest,
                "manifest_sha256": release.manifest_sha256,
                "rollback_of": rollback_of.number if rollback_of else None,
            },
        )
        event_emit(
            type=EventType.RELEASE_CREATED,
            team=service.team,
            subject=f"releases/{release.pk}",
            data={
                "id": release.pk,
                "service": service.name,
                "environment": environment.name,
                "deployment": deployment.pk,
                "number": number,
                "strategy": release.strategy,
                "binary_version": binary.version,
                "binary_sha256": binary.sha256,
                "base_digest": runtime.digest,
                "manifest_sha256": release.manifest_sha256,
                "rollback_of": rollback_of.number if rollback_of else None,
            },
        )
    return release


def release_rollback(*, actor: Actor, release: Release) -> Release:
    """A new release of the same deployment with `release`'s binary and runtime versions."""
    return release_create(
        actor=actor,
        deployment=release.deployment,
        binary_version=release.binary_version,
        runtime_version=release.runtime_version,
        rollback_of=release,
    )


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def release_create_many(
    *,
    actor: Actor,
    deployments: Sequence[Deployment],
    runtime_version: ImageVersion,
) -> dict[int, Release | str]:
    """The next release of each of `deployments` on `runtime_version`, same binary each.

    The batched twin of `release_create` for plans (thousands of deployments): the same
    checks (`check_binary`, `check_runtime`, `_check_artifact`) and the same renderer and
    strict validation (`manifest_input_for` + `_render`) per deployment, but a constant number
    of queries: the deployments are locked in one query, their next numbers read in one
    grouped query, the releases and their audit rows bulk-inserted and the deployments moved
    to the new runtime in one UPDATE. The caller checks who may act (a plan: platform admins)
    and passes `deployments` with service, team, environment and binary version loaded.

    Returns:
        deployment id → its new Release, or the reason it got none (refused binary, render or
        validation errors); one deployment's problem never stops the others.
    """
    results: dict[int, Release | str] = {}
    if not deployments:
        return results
    try:
        check_runtime(runtime_version)
    except ValidationError as exc:
        return {d.pk: _messages(exc) for d in deployments}
    ids = sorted(d.pk for d in deployments)
    user = actor.user if actor.user is not None and actor.user.pk else None
    with transaction.atomic():
        list(Deployment.objects.select_for_update().filter(pk__in=ids).order_by("pk").values("pk"))
        numbers = dict(
            Release.objects.filter(deployment_id__in=ids)
            .order_by()
            .values("deployment_id")
            .annotate(n=Max("number"))
            .values_list("deployment_id", "n")
        )
        releases: list[Release] = []
        befores: dict[int, int] = {}
        for deployment in deployments:
            binary = deployment.binary_version
            try:
                if binary is None:
                    raise ValidationError(
                        {
                            "binary_version": gettext("%(deployment)s has no binary version yet.")
                            % {"deployment": deployment}
                        }
                    )
                check_binary(binary, deployment.service)
                _check_artifact(binary, deployment)
                number = (numbers.get(deployment.pk) or 0) + 1
                m = manifest_input_for(
                    deployment=deployment, number=number, binary=binary, runtime=runtime_version
                )
                manifest, dockerfile, validation = _render(
                    m, k8s_version=deployment.environment.k8s_version
                )
            except ValidationError as exc:
                results[deployment.pk] = _messages(exc)
                continue
            releases.append(
                Release(
                    deployment=deployment,
                    number=number,
                    strategy=m.strategy,
                    binary_version=binary,
                    runtime_version=runtime_version,
                    binary_sha256=binary.sha256,
                    base_digest=runtime_version.digest,
                    manifest_yaml=manifest,
                    dockerfile=dockerfile,
                    manifest_sha256=(
                        hashlib.sha256(manifest.encode()).hexdigest() if manifest else ""
                    ),
                    k8s_version=deployment.environment.k8s_version,
                    validation=validation,
                    created_by=user,
                    created_by_token=actor.token,
                )
            )
            befores[deployment.pk] = deployment.runtime_version_id
        Release.objects.bulk_create(releases, batch_size=500)
        Deployment.objects.filter(pk__in=[r.deployment_id for r in releases]).update(
            runtime_version=runtime_version
        )
        release_type = ContentType.objects.get_for_model(Release)
        request_id = current_request_id()
        AuditEntry.objects.bulk_create(
            [
                AuditEntry(
                    actor_user=user,
                    actor_token=actor.token,
                    actor_repr=str(actor)[:200],
                    action="release.create",
                    object_type=release_type,
                    object_id=str(r.pk),
                    object_repr=str(r)[:300],
                    before={
                        "binary_version": r.binary_version_id,
                        "runtime_version": befores[r.deployment_id],
                    },
                    after={
                        "number": r.number,
                        "binary_version": r.binary_version_id,
                        "runtime_version": runtime_version.pk,
                        "binary_sha256": r.binary_sha256,
                        "base_digest": r.base_digest,
                        "manifest_sha256": r.manifest_sha256,
                        "rollback_of": None,
                    },
                    request_id=request_id,
                )
                for r in releases
            ],
            batch_size=1000,
        )
        for release in releases:
            release.deployment.runtime_version = runtime_version
            results[release.deployment_id] = release
    return results
