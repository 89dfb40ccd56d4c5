"""Releasing a wave: volume-mode releases in chunks; image-mode builds and their callbacks.

See the package docstring for the plan and item states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from portal.actors import Actor
from portal.audit import audit_record
from portal.jobs import IllegalTransition

from ...choices import (
    DeploymentMode,
    PlanItemState,
    PlanState,
)
from ...models import Deployment, Plan, PlanItem, Release
from .._common import PINNED_REF
from ..app_images import app_image_build_start
from ..releases import release_create_many
from .dryrun import _plan_actor
from .transitions import _plan_fail, plan_advance

# --- releasing a wave ------------------------------------------------------------------------


def _release_chunk(plan: Plan, item_ids: list[int]) -> dict[str, int]:
    """Release the pending volume-mode items `item_ids` of `plan` in one transaction; start
    the app-image builds of its image-mode ones. Returns counts by outcome."""
    target = plan.to_version
    actor = _plan_actor(plan)
    out = {"released": 0, "failed": 0, "skipped": 0, "building": 0}
    try:
        with transaction.atomic():
            items = list(
                PlanItem.objects.select_for_update(of=("self",))
                .filter(pk__in=item_ids, state=PlanItemState.PENDING)
                .select_related(
                    "deployment__service__team",
                    "deployment__environment",
                    "deployment__binary_version",
                )
                .order_by("pk")
            )
            volume = [i for i in items if i.deployment.mode == DeploymentMode.VOLUME]
            dep_ids = [i.deployment_id for i in volume]
            current = dict(
                Deployment.objects.select_for_update()
                .filter(pk__in=dep_ids)
                .order_by("pk")
                .values_list("pk", "runtime_version_id")
            )
            done_elsewhere = set(
                PlanItem.objects.filter(
                    deployment_id__in=dep_ids, target_version=target, release__isnull=False
                ).values_list("deployment_id", flat=True)
            )
            now = timezone.now()
            to_release: list[PlanItem] = []
            for item in volume:
                if item.deployment_id in done_elsewhere or current.get(item.deployment_id) == (
                    target.pk
                ):
                    item.state = PlanItemState.SKIPPED
                    item.error = gettext_noop(
                        "Already released on the target (another plan or by hand)."
                    )
                    out["skipped"] += 1
                else:
                    to_release.append(item)
            for item in to_release:
                item.deployment.runtime_version_id = current.get(
                    item.deployment_id, item.deployment.runtime_version_id
                )
            results = release_create_many(
                actor=actor,
                deployments=[i.deployment for i in to_release],
                runtime_version=target,
            )
            for item in to_release:
                result = results[item.deployment_id]
                if isinstance(result, Release):
                    item.release = result
                    item.state = PlanItemState.RELEASED
                    item.error = ""
                    out["released"] += 1
                else:
                    item.state = PlanItemState.FAILED
                    item.error = result[:2000]
                    out["failed"] += 1
            for item in volume:
                item.updated_at = now
            PlanItem.objects.bulk_update(
                volume, ["state", "release", "error", "updated_at"], batch_size=1000
            )
    except IntegrityError:
        # Another path gave one of these deployments a release for this target meanwhile
        # (the partial unique constraint): one by one, the culprit is skipped.
        if len(item_ids) == 1:
            PlanItem.objects.filter(pk=item_ids[0], state=PlanItemState.PENDING).update(
                state=PlanItemState.SKIPPED,
                error=gettext_noop("Already released on the target."),
                updated_at=timezone.now(),
            )
            return {"released": 0, "failed": 0, "skipped": 1, "building": 0}
        for pk in item_ids:
            for k, v in _release_chunk(plan, [pk]).items():
                out[k] += v
        return out
    for item in items:
        if item.deployment.mode == DeploymentMode.IMAGE:
            out["building"] += _start_build(plan, item, actor)
    return out


def _start_build(plan: Plan, item: PlanItem, actor: Actor) -> int:
    with transaction.atomic():
        job = app_image_build_start(
            deployment_id=item.deployment_id,
            runtime_version_id=plan.to_version_id,
            actor=actor,
            plan_item_id=item.pk,
        )
        return PlanItem.objects.filter(pk=item.pk, state=PlanItemState.PENDING).update(
            state=PlanItemState.BUILDING, build_job=job, updated_at=timezone.now()
        )


def plan_wave_release(
    *,
    plan_id: int,
    wave: int,
    progress: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """The wave job's work: release the wave's pending items in chunks of
    PORTAL_PLAN_RELEASE_CHUNK (each one transaction), stopping when the plan is paused,
    aborted or moved on; then `plan_advance`."""
    plan = Plan.objects.select_related("to_version__base_image", "to_version__registry").get(
        pk=plan_id
    )
    ids = list(
        PlanItem.objects.filter(plan=plan, wave=wave, state=PlanItemState.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    totals = {"released": 0, "failed": 0, "skipped": 0, "building": 0}
    chunk = max(1, settings.PORTAL_PLAN_RELEASE_CHUNK)
    stopped = ""
    for start in range(0, len(ids), chunk):
        state, current = Plan.objects.filter(pk=plan_id).values_list("state", "current_wave")[0]
        if state != PlanState.APPLYING or current != wave:
            stopped = f"plan is {state} (wave {current})"
            break
        for k, v in _release_chunk(plan, ids[start : start + chunk]).items():
            totals[k] += v
        if progress is not None:
            done = min(start + chunk, len(ids))
            progress(int(done * 100 / len(ids)), f"wave {wave}: {done} of {len(ids)} items")
    plan_advance(plan_id=plan_id)
    return {"plan": plan_id, "wave": wave, "items": len(ids), "stopped": stopped, **totals}


# --- app-image builds call back ---------------------------------------------------------------


def plan_item_app_image_built(*, item_id: int, app_image: str, actor: Actor) -> PlanItem:
    """The app-image build of an image-mode item succeeded: the deployment takes
    `app_image` (digest-pinned) and gets its release on the plan's target.

    Raises:
        ValidationError: `app_image` is not a digest-pinned reference.
        IllegalTransition: the item is not building (aborted, re-targeted, reported twice).
    """
    if not PINNED_REF.match(app_image or ""):
        raise ValidationError(
            {"app_image": gettext_lazy("Give a digest-pinned image (…@sha256:<64 hex>).")}
        )
    with transaction.atomic():
        item = (
            PlanItem.objects.select_for_update(of=("self",))
            .select_related(
                "plan__to_version__base_image",
                "plan__to_version__registry",
                "deployment__service__team",
                "deployment__environment",
                "deployment__binary_version",
            )
            .filter(pk=item_id)
            .first()
        )
        if item is None:
            raise Http404(gettext("No plan item %(item_id)s.") % {"item_id": item_id})
        if item.state != PlanItemState.BUILDING:
            raise IllegalTransition(
                gettext("Plan item %(item_id)s is %(state)s, not building.")
                % {"item_id": item_id, "state": item.state}
            )
        before = item.deployment.app_image
        Deployment.objects.filter(pk=item.deployment_id).update(
            app_image=app_image, app_image_base_digest=item.plan.to_version.digest
        )
        item.deployment.app_image = app_image
        result = release_create_many(
            actor=_plan_actor(item.plan),
            deployments=[item.deployment],
            runtime_version=item.plan.to_version,
        )[item.deployment_id]
        if isinstance(result, Release):
            item.state, item.release, item.error = PlanItemState.RELEASED, result, ""
        else:
            item.state, item.error = PlanItemState.FAILED, result[:2000]
        item.save(update_fields=["state", "release", "error", "updated_at"])
        audit_record(
            actor=actor,
            action="plan_item.app_image_built",
            obj=item,
            before={"app_image": before},
            after={"app_image": app_image, "state": item.state},
        )
    if item.state == PlanItemState.FAILED:
        _plan_fail(
            item.plan_id,
            gettext_noop("Item %(item)s: %(error)s") % {"item": item.pk, "error": item.error},
        )
    return item


def plan_item_app_image_failed(*, item_id: int, error: str, actor: Actor) -> PlanItem:
    """The app-image build of an image-mode item failed: the item fails and stops the plan."""
    with transaction.atomic():
        updated = PlanItem.objects.filter(pk=item_id, state=PlanItemState.BUILDING).update(
            state=PlanItemState.FAILED, error=error[:2000], updated_at=timezone.now()
        )
        item = PlanItem.objects.filter(pk=item_id).first()
        if item is None:
            raise Http404(gettext("No plan item %(item_id)s.") % {"item_id": item_id})
        if not updated:
            raise IllegalTransition(
                gettext("Plan item %(item_id)s is %(state)s, not building.")
                % {"item_id": item_id, "state": item.state}
            )
        audit_record(
            actor=actor, action="plan_item.app_image_failed", obj=item, after={"error": error}
        )
    _plan_fail(
        item.plan_id,
        gettext_noop("The app-image build of item %(item)s failed: %(error)s")
        % {"item": item.pk, "error": error},
    )
    return item
