"""Making plans: a rebase plan, a migration plan, the publish's draft, re-targeting.

See the package docstring for the plan and item states."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from images.models import ImageVersion
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.models import Team

from ...choices import DeploymentMode, PlanItemState, PlanKind, PlanState
from ...models import Deployment, Environment, Plan, PlanItem
from ...selectors.plans import (
    ACTIVE_PLAN_STATES,
    OPEN_ITEM_STATES,
    image_abi_of,
)
from .dryrun import (
    MAX_DEPLOYMENT_IDS,
    _announce,
    _busy_elsewhere,
    _Candidate,
    _candidates,
    _check_target,
    _check_wave_options,
    _make_items,
    _require_admin,
    _version,
    rebuild_remediation,
)

logger = logging.getLogger(__name__)


def _create_plan(
    *,
    actor: Actor,
    kind: str,
    from_version: ImageVersion | None,
    target: ImageVersion,
    selector: dict[str, Any],
    deployments: list[_Candidate],
    wave_size: int,
    soak_seconds: int,
    retarget: list[PlanItem] | None = None,
) -> Plan:
    target_abi = image_abi_of(target)
    remediation = rebuild_remediation(target_abi) if kind == PlanKind.MIGRATION else None
    moving = {i.pk for i in retarget or ()}
    busy = _busy_elsewhere((d.pk for d in deployments), moving)
    chosen = [d for d in deployments if d.pk not in busy]
    if not chosen:
        raise Conflict(
            gettext(
                "All %(busy)s chosen deployment(s) are in another plan still at work; finish or "
                "abort it first."
            )
            % {"busy": len(busy)},
            code="duplicate",
        )
    with transaction.atomic():
        plan = Plan(
            kind=kind,
            from_version=from_version,
            to_version=target,
            selector=selector,
            wave_size=wave_size,
            soak_seconds=soak_seconds,
            created_by=actor.user if actor.user is not None and actor.user.pk else None,
            created_by_repr=str(actor)[:200],
            note=(
                f"{len(busy)} deployment(s) left out: they are in another plan still at work."
                if busy
                else ""
            ),
        )
        plan.full_clean()
        plan.save()
        items = _make_items(
            plan, chosen, target=target, target_abi=target_abi, remediation=remediation
        )
        PlanItem.objects.bulk_create(items, batch_size=2000)
        if retarget:
            _retarget_old_items(retarget, plan, actor)
        audit_record(
            actor=actor,
            action=f"plan.create_{kind}",
            obj=plan,
            after={
                "from_version": from_version.pk if from_version else None,
                "to_version": target.pk,
                "selector": selector,
                "items": len(items),
                "retargeted": len(moving),
            },
        )
        _announce(plan, "create", "")
    return plan


# --- create ----------------------------------------------------------------------------------


def _retarget_sources(from_version: ImageVersion, target: ImageVersion) -> list[PlanItem]:
    """Items of older active rebase plans of the same line that a newer target takes over:
    plans from the same `from_version` or to it (a patch of a patch), items not released."""
    return list(
        PlanItem.objects.filter(
            plan__kind=PlanKind.REBASE,
            plan__state__in=ACTIVE_PLAN_STATES,
            plan__to_version__base_image_id=target.base_image_id,
            plan__to_version__created_at__lt=target.created_at,
            state__in=[PlanItemState.PENDING, PlanItemState.BLOCKED],
        )
        .filter(Q(plan__from_version=from_version) | Q(plan__to_version=from_version))
        .exclude(plan__to_version=target)
        .select_related("plan")
    )


def _retarget_old_items(items: list[PlanItem], new_plan: Plan, actor: Actor) -> None:
    note = gettext_noop("Re-targeted to plan #%(plan)s (version %(version)s).") % {
        "plan": new_plan.pk,
        "version": new_plan.to_version_id,
    }
    PlanItem.objects.filter(pk__in=[i.pk for i in items]).update(
        state=PlanItemState.SKIPPED, error=note, updated_at=timezone.now()
    )
    for plan_id in sorted({i.plan_id for i in items}):
        old = Plan.objects.get(pk=plan_id)
        audit_record(
            actor=actor,
            action="plan.retarget",
            obj=old,
            after={"to_plan": new_plan.pk, "items": sum(1 for i in items if i.plan_id == plan_id)},
        )
        if (
            old.state == PlanState.DRAFT
            and not PlanItem.objects.filter(plan=old, state__in=OPEN_ITEM_STATES).exists()
        ):
            Plan.objects.filter(pk=old.pk, state=PlanState.DRAFT).update(
                state=PlanState.ABORTED,
                finished_at=timezone.now(),
                note=f"Superseded by plan #{new_plan.pk}.",
            )


def rebase_plan_create(
    *,
    actor: Actor,
    from_version_id: int,
    to_version_id: int,
    wave_size: int | None = None,
    soak_seconds: int | None = None,
) -> Plan:
    """A draft rebase plan: every deployment whose current runtime is `from_version_id`
    (volume mode: its live release runs that digest; image mode: its app image is built on
    it) moves to `to_version_id`, a newer approved version of the same image.

    Older active rebase plans of the line that start from the same version, or go to it, hand
    over their items not released yet (re-target): those deployments join this plan.

    Raises:
        PermissionDenied: not a platform admin.
        ValidationError: unknown versions, another image, a target not approved, bad wave
            options, or nothing to move.
    """
    _require_admin(actor, "create")
    size, soak = _check_wave_options(wave_size, soak_seconds)
    old = _version(from_version_id, "from_version")
    target = _version(to_version_id, "to_version")
    if old.pk == target.pk:
        raise ValidationError(
            {"to_version": gettext_lazy("The target is the version being replaced.")}
        )
    if old.base_image_id != target.base_image_id:
        raise ValidationError(
            {
                "to_version": gettext(
                    "%(target)s is another image than %(old)s; a move to another image is an OS "
                    "migration (POST /api/v1/migration-plans/)."
                )
                % {"target": target, "old": old}
            }
        )
    _check_target(target, "to_version")
    retarget = _retarget_sources(old, target)
    moved = {i.deployment_id for i in retarget}
    # Image mode: the base digest read from the app image (when known) says what it runs on,
    # whatever runtime version the deployment declares.
    built_elsewhere = (
        Q(mode=DeploymentMode.IMAGE)
        & ~Q(app_image_base_digest="")
        & ~Q(app_image_base_digest=old.digest)
    )
    on_old = (Q(runtime_version=old) & ~built_elsewhere) | (
        Q(mode=DeploymentMode.IMAGE, app_image_base_digest=old.digest) & ~Q(runtime_version=target)
    )
    deployments = _candidates(on_old | Q(pk__in=moved))
    if not deployments:
        raise ValidationError(
            {
                "from_version": gettext(
                    "No deployment runs %(old)s, and no plan has items to re-target."
                )
                % {"old": old}
            }
        )
    return _create_plan(
        actor=actor,
        kind=PlanKind.REBASE,
        from_version=old,
        target=target,
        selector={},
        deployments=deployments,
        wave_size=size,
        soak_seconds=soak,
        retarget=retarget,
    )


def migration_plan_create(
    *,
    actor: Actor,
    target_version_id: int,
    deployment_ids: Sequence[int] | None = None,
    team: str | None = None,
    environment: str | None = None,
    base_image_id: int | None = None,
    wave_size: int | None = None,
    soak_seconds: int | None = None,
) -> Plan:
    """A draft OS migration plan: the chosen deployments (ids, or a selector of team name,
    environment name and current base image, combined with AND) move to `target_version_id`.
    Each item carries its verdict; incompatible ones also a rebuild remediation.

    Raises:
        PermissionDenied: not a platform admin.
        ValidationError: no selector, unknown ids/names, a target not approved, nothing chosen.
    """
    _require_admin(actor, "create")
    size, soak = _check_wave_options(wave_size, soak_seconds)
    target = _version(target_version_id, "target")
    _check_target(target, "target")
    if not deployment_ids and not team and not environment and base_image_id is None:
        raise ValidationError(
            {
                "deployments": gettext(
                    "Choose deployments: give their ids, or a team, an environment or a base image."
                )
            }
        )
    q = Q()
    selector: dict[str, Any] = {}
    if deployment_ids:
        ids = sorted(set(deployment_ids))
        if len(ids) > MAX_DEPLOYMENT_IDS:
            raise ValidationError(
                {
                    "deployments": gettext("At most %(MAX_DEPLOYMENT_IDS)s ids.")
                    % {"MAX_DEPLOYMENT_IDS": MAX_DEPLOYMENT_IDS}
                }
            )
        found = set(Deployment.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationError(
                {"deployments": gettext("No deployments %(missing)s.") % {"missing": missing[:20]}}
            )
        q &= Q(pk__in=ids)
        selector["deployments"] = ids
    if team:
        team_row = Team.objects.filter(name=team).first()
        if team_row is None:
            raise ValidationError({"team": gettext("No team %(team)r.") % {"team": team}})
        q &= Q(service__team=team_row)
        selector["team"] = team
    if environment:
        env_row = Environment.objects.filter(name=environment).first()
        if env_row is None:
            raise ValidationError(
                {
                    "environment": gettext("No environment %(environment)r.")
                    % {"environment": environment}
                }
            )
        q &= Q(environment=env_row)
        selector["environment"] = environment
    if base_image_id is not None:
        from images.models import BaseImage

        if not BaseImage.objects.filter(pk=base_image_id).exists():
            raise ValidationError(
                {
                    "base_image": gettext("No base image %(base_image_id)s.")
                    % {"base_image_id": base_image_id}
                }
            )
        q &= Q(runtime_version__base_image_id=base_image_id)
        selector["base_image"] = base_image_id
    deployments = _candidates(q)
    if not deployments:
        raise ValidationError({"deployments": gettext_lazy("The selector chooses no deployment.")})
    return _create_plan(
        actor=actor,
        kind=PlanKind.MIGRATION,
        from_version=None,
        target=target,
        selector=selector,
        deployments=deployments,
        wave_size=size,
        soak_seconds=soak,
    )


# --- the publish's signal --------------------------------------------------------------------


def on_image_version_superseded(
    sender: Any, *, old_version_id: int, new_version_id: int, actor: Any = None, **_: Any
) -> Plan | None:
    """Receiver of `images.signals.image_version_superseded`: a draft rebase plan from the
    superseded version to its replacement, when a deployment runs it or a plan targets it."""
    targeted = PlanItem.objects.filter(
        plan__state__in=ACTIVE_PLAN_STATES,
        plan__to_version_id=old_version_id,
        state__in=[PlanItemState.PENDING, PlanItemState.BLOCKED],
    ).exists()
    old_digest = ImageVersion.objects.filter(pk=old_version_id).values_list("digest", flat=True)
    on_old = Q(runtime_version_id=old_version_id) | Q(
        mode=DeploymentMode.IMAGE, app_image_base_digest__in=old_digest
    )
    if not targeted and not Deployment.objects.filter(on_old).exists():
        return None
    try:
        return rebase_plan_create(
            actor=Actor.system_actor("publish"),
            from_version_id=old_version_id,
            to_version_id=new_version_id,
        )
    except (ValidationError, PermissionDenied) as exc:
        logger.warning("no rebase plan for %s → %s: %s", old_version_id, new_version_id, exc)
        return None
