"""App-image builds for image-mode deployments: the rendered image-mode Dockerfile built with
buildah on the new base digest, pushed to `apps/<service>`, its digest read back.

The job (`deployments.buildjobs.app_image_build`) also checks that the pushed image's first
layers are exactly the runtime version's and that its base-digest label names it, and, when
its params carry `plan_item_id`, hands the result to `plans.plan_item_app_image_built`.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext, pgettext

from images.choices import ImageKind, VersionState
from images.models import ImageVersion
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.choices import Role
from portal.jobs import job_create
from portal.models import Job
from portal.teams import require_team_role
from portal.templatetags.portal_i18n import status_label

from ..choices import BinaryState
from ..models import Deployment

APP_IMAGE_JOB_KIND = "deployments.app_image_build"
APPS_REPOSITORY = "apps"
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def app_image_tag(version: str, runtime_digest: str) -> str:
    """`<version>-<12 hex of the runtime digest>` as a valid OCI tag (≤ 128 characters)."""
    short = runtime_digest.removeprefix("sha256:")[:12]
    stem = _TAG_UNSAFE.sub("_", version)[: 127 - len(short)]
    tag = f"{stem}-{short}"
    if not re.match(r"[A-Za-z0-9_]", tag[0]):
        tag = "v" + tag[:127]
    return tag


def app_image_build_start(
    *, deployment_id: int, runtime_version_id: int, actor: Actor, plan_item_id: int | None = None
) -> Job:
    """Start the app-image build job of one deployment on `runtime_version_id`; its result
    carries `app_image` (the digest-pinned reference) for the release that follows.

    One live build per (deployment, runtime version): asking again while one is queued or
    running returns that job.

    Raises:
        PermissionDenied: the actor is neither a developer (or above) of the service's team
            nor a platform admin.
        ValidationError: no such deployment or runtime version, not a runtime image, not
            approved, or the deployment has no binary.
        Conflict: the deployment's binary is purged.
    """
    deployment = (
        Deployment.objects.select_related("service__team", "binary_version")
        .filter(pk=deployment_id)
        .first()
    )
    if deployment is None:
        raise ValidationError(
            {
                "deployment": gettext("No deployment #%(deployment_id)s.")
                % {"deployment_id": deployment_id}
            }
        )
    if not actor.is_platform_admin:
        require_team_role(
            actor=actor,
            team=deployment.service.team,
            minimum=Role.DEVELOPER,
            what=pgettext("may …", "build its app images"),
        )
    runtime = (
        ImageVersion.objects.select_related("base_image").filter(pk=runtime_version_id).first()
    )
    if runtime is None:
        raise ValidationError(
            {
                "runtime_version": gettext("No image version #%(runtime_version_id)s.")
                % {"runtime_version_id": runtime_version_id}
            }
        )
    if runtime.base_image.kind != ImageKind.RUNTIME:
        raise ValidationError(
            {
                "runtime_version": gettext("%(runtime)s is a %(kind)s image, not a runtime.")
                % {"runtime": runtime, "kind": status_label(runtime.base_image.kind)}
            }
        )
    if runtime.state not in (VersionState.APPROVED, VersionState.CANDIDATE):
        raise ValidationError(
            {
                "runtime_version": gettext(
                    "%(runtime)s is %(state)s; build on an approved version."
                )
                % {"runtime": runtime, "state": status_label(runtime.state)}
            }
        )
    binary = deployment.binary_version
    if binary is None:
        raise ValidationError(
            {
                "deployment": gettext("%(deployment)s has no binary version.")
                % {"deployment": deployment}
            }
        )
    if binary.state == BinaryState.PURGED:
        raise Conflict(
            gettext("%(binary)s is purged: its file is gone.") % {"binary": binary}, code="purged"
        )
    params: dict[str, int] = {
        "deployment_id": deployment.pk,
        "runtime_version_id": runtime.pk,
    }
    key = f"app-image:{deployment.pk}:{runtime.pk}:{binary.pk}"
    if plan_item_id is not None:
        params["plan_item_id"] = int(plan_item_id)
        key += f":item{int(plan_item_id)}"
    job, _ = job_create(
        kind=APP_IMAGE_JOB_KIND,
        actor=actor,
        params=params,
        target=deployment,
        team=deployment.service.team,
        idempotency_key=key,
    )
    return job
