"""Writes of rebase and migration plans: the dry run, its waves, CD's status reports.

A plan is made as a dry run (`draft`): one item per deployment with its ABI verdict against
the target, its state and its wave. Applying it rolls the waves out: wave 0 is the canary (one
deployment in the lowest environment, see `environment_rank`), then environment by
environment in batches of `wave_size`. Each wave's releases are created by a job
(`deployments.plan_wave`), never in the request: volume mode gets a new release on the target
digest with the same binary (`release_create_many`, the batched `release_create`); image mode
starts an app-image build (`app_image_build_start`) whose job calls back
`plan_item_app_image_built` (or `plan_item_app_image_failed`).

A wave advances (`plan_advance`, also run by beat every 30 s) when all its releases are reported
healthy, or, with `soak_seconds` > 0, once that long has passed since the wave started with no
failure. A failure (a release reported failed, a render refused, a build failed) stops the plan
(`failed`); `plan_retry_failed` resumes it.

Plan states (guarded conditional updates; anything else is `IllegalTransition`, a 409):

    draft    -> applying (apply) | aborted (abort)
    applying -> paused (pause) | completed (no wave left) | failed (a failure) | aborted
    paused   -> applying (resume) | failed (a failure reported meanwhile) | aborted
    failed   -> applying (retry-failed) | aborted

Item states: pending -> released (volume) | building -> released (image); released -> healthy
| failed (CD's report); pending|building -> skipped (abort, re-target); failed -> pending |
released (retry-failed); blocked (incompatible, never released) and skipped are final.

Verdicts: an incompatible item is blocked with its findings, in every plan. An unknown one
(a non-ELF file, a target without ABI facts, the compat module's "cannot tell") is released by
a rebase (same image line, a patch) but skipped by a migration, which releases only compatible
binaries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q
from django.http import Http404
from django.utils import timezone

from images.choices import ImageKind, VersionState
from images.models import ImageAbi, ImageVersion
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role, role_at_least
from portal.events import EventType, event_emit
from portal.jobs import IllegalTransition, job_create
from portal.models import Job, Team

from ..choices import (
    DeploymentMode,
    PlanItemState,
    PlanKind,
    PlanState,
    ReleaseStatus,
    Verdict,
)
from ..models import BinaryVersion, Deployment, Environment, Plan, PlanItem, Release
from ..selectors.plans import (
    ACTIVE_PLAN_STATES,
    OPEN_ITEM_STATES,
    finding_dict,
    image_abi_of,
    image_facts_from_abi,
    verdict_against,
)
from ._common import PINNED_REF
from .app_images import app_image_build_start
from .releases import release_create_many

logger = logging.getLogger(__name__)

PLAN_WAVE_JOB_KIND = "deployments.plan_wave"
REPORTABLE_STATUSES = (ReleaseStatus.DEPLOYED, ReleaseStatus.HEALTHY, ReleaseStatus.FAILED)
MAX_DEPLOYMENT_IDS = 10_000
MAX_WAVE_SIZE = 10_000
MAX_SOAK_SECONDS = 7 * 24 * 3600


# --- helpers ---------------------------------------------------------------------------------


def environment_rank(name: str) -> tuple[int, str]:
    """Where an environment comes in a rollout: its place in PORTAL_PLAN_ENVIRONMENT_ORDER
    (dev < test < qa < staging < prod by default); a name not listed goes just before the
    first of prod/production (or last), ties by name."""
    order = [n.lower() for n in settings.PORTAL_PLAN_ENVIRONMENT_ORDER]
    lowered = name.lower()
    if lowered in order:
        return (order.index(lowered) * 2, name)
    prod = next((i for i, n in enumerate(order) if n in ("prod", "production")), len(order))
    return (prod * 2 - 1, name)


def _require_admin(actor: Actor, what: str) -> None:
    if not actor.is_platform_admin:
        raise PermissionDenied(f"Only a platform admin may {what} rebase and migration plans.")


def _plan_actor(plan: Plan) -> Actor:
    """Who the plan's releases are made by (a platform admin is no member of service teams)."""
    return Actor.system_actor(f"plan:{plan.pk}")


def _version(pk: int, field: str) -> ImageVersion:
    version = ImageVersion.objects.select_related("base_image", "registry").filter(pk=pk).first()
    if version is None:
        raise ValidationError({field: f"No image version {pk}."})
    return version


def _check_target(target: ImageVersion, field: str) -> None:
    if target.base_image.kind != ImageKind.RUNTIME:
        raise ValidationError(
            {field: f"{target} is a {target.base_image.kind} image; move deployments to a runtime."}
        )
    if target.state != VersionState.APPROVED:
        raise ValidationError(
            {field: f"{target} is {target.state}; only an approved version can be a target."}
        )


def _check_wave_options(wave_size: int | None, soak_seconds: int | None) -> tuple[int, int]:
    size = settings.PORTAL_PLAN_WAVE_SIZE if wave_size is None else wave_size
    soak = settings.PORTAL_PLAN_SOAK_SECONDS if soak_seconds is None else soak_seconds
    if not 1 <= size <= MAX_WAVE_SIZE:
        raise ValidationError({"wave_size": f"Give a wave size from 1 to {MAX_WAVE_SIZE}."})
    if not 0 <= soak <= MAX_SOAK_SECONDS:
        raise ValidationError({"soak_seconds": f"Give 0 to {MAX_SOAK_SECONDS} seconds."})
    return size, soak


def _version_key(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


@dataclass(frozen=True)
class _Candidate:
    """What a dry run needs of one deployment (no model instance: 10,000 of them stay cheap)."""

    pk: int
    environment_id: int
    environment: str
    service: str
    runtime_version_id: int
    binary: BinaryVersion | None


def _candidates(q: Q) -> list[_Candidate]:
    """The deployments `q` chooses, in two queries (their rows, then their distinct binaries)."""
    rows = list(
        Deployment.objects.filter(q)
        .order_by("pk")
        .values_list(
            "pk",
            "environment_id",
            "environment__name",
            "service__name",
            "runtime_version_id",
            "binary_version_id",
        )
    )
    binaries = BinaryVersion.objects.select_related("service").in_bulk(
        {r[5] for r in rows if r[5] is not None}
    )
    return [
        _Candidate(r[0], r[1], r[2], r[3], r[4], binaries.get(r[5]) if r[5] else None) for r in rows
    ]


def _busy_elsewhere(deployment_ids: Iterable[int], moving: set[int]) -> set[int]:
    """Deployments with an item still at work (pending/building) in another active plan,
    other than the items a re-target moves (read as the open items, usually few, rather than
    an IN list of every chosen deployment)."""
    open_items = PlanItem.objects.filter(
        state__in=OPEN_ITEM_STATES, plan__state__in=ACTIVE_PLAN_STATES
    ).values_list("pk", "deployment_id")
    busy = {dep for pk, dep in open_items if pk not in moving}
    return busy.intersection(deployment_ids)


def rebuild_remediation(target_abi: ImageAbi | None) -> dict[str, Any] | None:
    """The finding a migration adds to an incompatible item: rebuild in the catalog's build
    image whose glibc matches the target's (else the newest one not above it)."""
    if target_abi is None or not target_abi.libc_version:
        return None
    limit = target_abi.libc_version
    rows = ImageAbi.objects.filter(
        libc_kind=target_abi.libc_kind,
        sbom__image_versions__base_image__kind=ImageKind.BUILD,
        sbom__image_versions__state=VersionState.APPROVED,
    ).values_list(
        "libc_version", "sbom__image_versions__base_image__name", "sbom__image_versions__tag"
    )
    fitting = sorted(
        (r for r in rows if _version_key(r[0]) <= _version_key(limit)),
        key=lambda r: (_version_key(r[0]) == _version_key(limit), _version_key(r[0]), r[1]),
        reverse=True,
    )
    kind = target_abi.libc_kind or "libc"
    if fitting:
        version, name, tag = fitting[0]
        text = f"rebuild in {name}:{tag}, {kind} ≤ {limit}"
        detail = f"{name}:{tag} has {kind} {version}; binaries built there run on the target."
    else:
        text = f"rebuild against {kind} ≤ {limit}"
        detail = "No approved build image in the catalog has a matching libc."
    return {
        "key": "remediation.rebuild",
        "severity": "info",
        "blocking": False,
        "title": text[0].upper() + text[1:],
        "detail": detail,
        "remediation": text,
    }


def _assign_waves(items: list[PlanItem], rows: dict[int, _Candidate], wave_size: int) -> None:
    """Wave 0: one pending item in the lowest environment; then per environment (lowest
    first) batches of `wave_size`. Items that will not be released get the first wave of
    their environment (shown there, never released)."""

    def key(item: PlanItem) -> tuple[tuple[int, str], str, int]:
        d = rows[item.deployment_id]
        return (environment_rank(d.environment), d.service, d.pk)

    pending = sorted((i for i in items if i.state == PlanItemState.PENDING), key=key)
    env_first: dict[int, int] = {}
    wave = 0
    if pending:
        pending[0].wave = 0
        env_first[rows[pending[0].deployment_id].environment_id] = 0
    batch_env: int | None = None
    in_batch = 0
    for item in pending[1:]:
        env = rows[item.deployment_id].environment_id
        if env != batch_env or in_batch >= wave_size:
            wave += 1
            in_batch = 0
            batch_env = env
            env_first.setdefault(env, wave)
        item.wave = wave
        in_batch += 1
    for item in items:
        if item.state != PlanItemState.PENDING:
            item.wave = env_first.get(rows[item.deployment_id].environment_id, wave)


def _make_items(
    plan: Plan,
    deployments: Sequence[_Candidate],
    *,
    target: ImageVersion,
    target_abi: ImageAbi | None,
    remediation: dict[str, Any] | None,
) -> list[PlanItem]:
    facts = image_facts_from_abi(target, target_abi)
    verdicts: dict[int | None, Any] = {}
    items = []
    for d in deployments:
        binary_id = d.binary.pk if d.binary is not None else None
        if binary_id not in verdicts:
            verdicts[binary_id] = verdict_against(d.binary, facts)
        result = verdicts[binary_id]
        findings = [finding_dict(f) for f in result.findings]
        state = PlanItemState.PENDING
        error = ""
        if d.runtime_version_id == target.pk:
            state, error = PlanItemState.SKIPPED, "Already on the target version."
        elif result.verdict == Verdict.INCOMPATIBLE:
            state = PlanItemState.BLOCKED
            if remediation is not None:
                findings.append(remediation)
        elif result.verdict != Verdict.COMPATIBLE and plan.kind == PlanKind.MIGRATION:
            state = PlanItemState.SKIPPED
            error = "The verdict is unknown; a migration releases only compatible binaries."
        items.append(
            PlanItem(
                plan=plan,
                deployment_id=d.pk,
                from_version_id=d.runtime_version_id,
                target_version=target,
                verdict=result.verdict,
                findings=findings,
                state=state,
                error=error,
            )
        )
    _assign_waves(items, {d.pk: d for d in deployments}, plan.wave_size)
    return items


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
            f"All {len(busy)} chosen deployment(s) are in another plan still at work; finish "
            "or abort it first.",
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
    note = f"Re-targeted to plan #{new_plan.pk} (version {new_plan.to_version_id})."
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
        raise ValidationError({"to_version": "The target is the version being replaced."})
    if old.base_image_id != target.base_image_id:
        raise ValidationError(
            {
                "to_version": f"{target} is another image than {old}; a move to another image "
                "is an OS migration (POST /api/v1/migration-plans/)."
            }
        )
    _check_target(target, "to_version")
    retarget = _retarget_sources(old, target)
    moved = {i.deployment_id for i in retarget}
    deployments = _candidates(Q(runtime_version=old) | Q(pk__in=moved))
    if not deployments:
        raise ValidationError(
            {"from_version": f"No deployment runs {old}, and no plan has items to re-target."}
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
                "deployments": "Choose deployments: give their ids, or a team, an environment "
                "or a base image."
            }
        )
    q = Q()
    selector: dict[str, Any] = {}
    if deployment_ids:
        ids = sorted(set(deployment_ids))
        if len(ids) > MAX_DEPLOYMENT_IDS:
            raise ValidationError({"deployments": f"At most {MAX_DEPLOYMENT_IDS} ids."})
        found = set(Deployment.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationError({"deployments": f"No deployments {missing[:20]}."})
        q &= Q(pk__in=ids)
        selector["deployments"] = ids
    if team:
        team_row = Team.objects.filter(name=team).first()
        if team_row is None:
            raise ValidationError({"team": f"No team {team!r}."})
        q &= Q(service__team=team_row)
        selector["team"] = team
    if environment:
        env_row = Environment.objects.filter(name=environment).first()
        if env_row is None:
            raise ValidationError({"environment": f"No environment {environment!r}."})
        q &= Q(environment=env_row)
        selector["environment"] = environment
    if base_image_id is not None:
        from images.models import BaseImage

        if not BaseImage.objects.filter(pk=base_image_id).exists():
            raise ValidationError({"base_image": f"No base image {base_image_id}."})
        q &= Q(runtime_version__base_image_id=base_image_id)
        selector["base_image"] = base_image_id
    deployments = _candidates(q)
    if not deployments:
        raise ValidationError({"deployments": "The selector chooses no deployment."})
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


# --- transitions -----------------------------------------------------------------------------


def _transition(plan_id: int, *, from_states: set[str], to: str, **fields: Any) -> Plan:
    """Guarded state change of a plan; IllegalTransition (409) when it is elsewhere."""
    updated = Plan.objects.filter(pk=plan_id, state__in=from_states).update(
        state=to, updated_at=timezone.now(), **fields
    )
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise Http404(f"No plan {plan_id}.")
    if not updated:
        allowed = ", ".join(sorted(from_states))
        raise IllegalTransition(
            f"Plan #{plan_id} is {plan.state}; it cannot become {to} (allowed from: {allowed})."
        )
    return plan


def _audit(plan: Plan, actor: Actor, verb: str, before: str, **after: Any) -> None:
    audit_record(
        actor=actor,
        action=f"plan.{verb}",
        obj=plan,
        before={"state": before},
        after={"state": plan.state, **after},
    )
    _announce(plan, verb, before)


def _announce(plan: Plan, verb: str, before: str) -> None:
    """`rebase_plan.changed` (rebase and migration plans alike) to the platform teams: a plan
    moves many teams' deployments, so no single team owns it."""
    event_emit(
        type=EventType.REBASE_PLAN_CHANGED,
        team=None,
        subject=f"plans/{plan.pk}",
        data={"id": plan.pk, "kind": plan.kind, "change": verb, "from": before, "to": plan.state},
    )


def _get_plan(plan_id: int) -> Plan:
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise Http404(f"No plan {plan_id}.")
    return plan


def _start_wave(plan: Plan, actor: Actor) -> Job | None:
    """Start the job releasing the current wave's pending items (one live job per wave)."""
    if not PlanItem.objects.filter(
        plan=plan, wave=plan.current_wave, state=PlanItemState.PENDING
    ).exists():
        return None
    job, _ = job_create(
        kind=PLAN_WAVE_JOB_KIND,
        actor=actor,
        params={"plan_id": plan.pk, "wave": plan.current_wave},
        target=plan,
        idempotency_key=f"{PLAN_WAVE_JOB_KIND}:{plan.pk}:{plan.current_wave}",
    )
    return job


def plan_apply(*, plan_id: int, actor: Actor) -> Plan:
    """draft → applying: the first wave's job starts (or the plan completes when nothing is
    left to release)."""
    _require_admin(actor, "apply")
    with transaction.atomic():
        first = PlanItem.objects.filter(plan_id=plan_id, state=PlanItemState.PENDING).aggregate(
            w=Min("wave")
        )["w"]
        now = timezone.now()
        plan = _transition(
            plan_id,
            from_states={PlanState.DRAFT},
            to=PlanState.APPLYING,
            applied_at=now,
            wave_started_at=now,
            current_wave=first or 0,
        )
        _audit(plan, actor, "apply", PlanState.DRAFT, wave=plan.current_wave)
        if first is None:
            plan = _transition(
                plan.pk, from_states={PlanState.APPLYING}, to=PlanState.COMPLETED, finished_at=now
            )
            _audit(plan, actor, "complete", PlanState.APPLYING)
        else:
            _start_wave(plan, actor)
    return plan


def plan_pause(*, plan_id: int, actor: Actor) -> Plan:
    """applying → paused: the wave job stops at its next chunk; no wave advances."""
    _require_admin(actor, "pause")
    with transaction.atomic():
        plan = _transition(plan_id, from_states={PlanState.APPLYING}, to=PlanState.PAUSED)
        _audit(plan, actor, "pause", PlanState.APPLYING)
    return plan


def plan_resume(*, plan_id: int, actor: Actor) -> Plan:
    """paused → applying: the current wave's job starts again for what it left pending."""
    _require_admin(actor, "resume")
    with transaction.atomic():
        plan = _transition(plan_id, from_states={PlanState.PAUSED}, to=PlanState.APPLYING)
        _audit(plan, actor, "resume", PlanState.PAUSED)
        _start_wave(plan, actor)
    return plan_advance(plan_id=plan.pk)


def plan_abort(*, plan_id: int, actor: Actor) -> Plan:
    """draft|applying|paused|failed → aborted: items not released are skipped (an app-image
    build already running finishes, but its result is refused)."""
    _require_admin(actor, "abort")
    with transaction.atomic():
        before = _get_plan(plan_id).state
        plan = _transition(
            plan_id,
            from_states={PlanState.DRAFT, PlanState.APPLYING, PlanState.PAUSED, PlanState.FAILED},
            to=PlanState.ABORTED,
            finished_at=timezone.now(),
        )
        skipped = PlanItem.objects.filter(plan=plan, state__in=OPEN_ITEM_STATES).update(
            state=PlanItemState.SKIPPED, error="The plan was aborted.", updated_at=timezone.now()
        )
        _audit(plan, actor, "abort", before, skipped=skipped)
    return plan


def plan_retry_failed(*, plan_id: int, actor: Actor) -> Plan:
    """failed → applying. Failed items without a release (render refused, build failed) go
    back to pending and are tried again; failed items with a release (CD reported it failed)
    become released again with the release's report cleared, awaiting CD's next report (a
    deployment never gets a second release for the same target)."""
    _require_admin(actor, "retry")
    with transaction.atomic():
        plan = _transition(plan_id, from_states={PlanState.FAILED}, to=PlanState.APPLYING, error="")
        failed = PlanItem.objects.filter(plan=plan, state=PlanItemState.FAILED)
        release_ids = list(
            failed.filter(release__isnull=False).values_list("release_id", flat=True)
        )
        Release.objects.filter(pk__in=release_ids).update(
            status=ReleaseStatus.NONE,
            status_note=f"Retry requested by {actor}"[:500],
            status_at=None,
        )
        now = timezone.now()
        again = failed.filter(release__isnull=False).update(
            state=PlanItemState.RELEASED, error="", updated_at=now
        )
        rerun = failed.filter(release__isnull=True).update(
            state=PlanItemState.PENDING, error="", build_job=None, updated_at=now
        )
        first = PlanItem.objects.filter(plan=plan, state=PlanItemState.PENDING).aggregate(
            w=Min("wave")
        )["w"]
        if first is not None and first < plan.current_wave:
            Plan.objects.filter(pk=plan.pk).update(current_wave=first)
            plan.current_wave = first
        Plan.objects.filter(pk=plan.pk).update(wave_started_at=now)
        plan.wave_started_at = now
        _audit(plan, actor, "retry_failed", PlanState.FAILED, released=again, pending=rerun)
        _start_wave(plan, actor)
    return plan


def _plan_fail(plan_id: int, reason: str) -> None:
    """applying|paused → failed with `reason` (nothing when the plan is elsewhere already)."""
    updated = Plan.objects.filter(
        pk=plan_id, state__in=[PlanState.APPLYING, PlanState.PAUSED]
    ).update(state=PlanState.FAILED, error=reason[:2000], updated_at=timezone.now())
    if updated:
        plan = Plan.objects.get(pk=plan_id)
        _audit(
            plan, Actor.system_actor(f"plan:{plan_id}"), "fail", PlanState.APPLYING, error=reason
        )


def plan_advance(*, plan_id: int) -> Plan:
    """Move an applying plan on: fail it on a failed item of the current wave, wait while the
    wave is releasing or its releases await CD (and the soak time, when set, has not passed),
    else start the next wave, or complete the plan when no item is left pending."""
    plan = _get_plan(plan_id)
    if plan.state != PlanState.APPLYING:
        return plan
    wave = plan.current_wave
    counts = {
        row["state"]: row["n"]
        for row in PlanItem.objects.filter(plan=plan, wave=wave)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
    }
    if counts.get(PlanItemState.FAILED):
        _plan_fail(plan.pk, f"{counts[PlanItemState.FAILED]} item(s) of wave {wave} failed.")
        return _get_plan(plan.pk)
    if counts.get(PlanItemState.PENDING) or counts.get(PlanItemState.BUILDING):
        return plan
    now = timezone.now()
    if counts.get(PlanItemState.RELEASED):
        started = plan.wave_started_at or now
        if not plan.soak_seconds or now < started + timedelta(seconds=plan.soak_seconds):
            return plan
    following = PlanItem.objects.filter(
        plan=plan, state=PlanItemState.PENDING, wave__gt=wave
    ).aggregate(w=Min("wave"))["w"]
    actor = _plan_actor(plan)
    with transaction.atomic():
        if following is None:
            updated = Plan.objects.filter(
                pk=plan.pk, state=PlanState.APPLYING, current_wave=wave
            ).update(state=PlanState.COMPLETED, finished_at=now, updated_at=now)
            plan = _get_plan(plan.pk)
            if updated:
                _audit(plan, actor, "complete", PlanState.APPLYING)
            return plan
        updated = Plan.objects.filter(
            pk=plan.pk, state=PlanState.APPLYING, current_wave=wave
        ).update(current_wave=following, wave_started_at=now, updated_at=now)
        plan = _get_plan(plan.pk)
        if updated:
            _audit(plan, actor, "advance", PlanState.APPLYING, wave=following)
            _start_wave(plan, actor)
    return plan


def plans_advance_all() -> int:
    """`plan_advance` for every applying plan (beat, every 30 s); returns how many ran."""
    ids = list(Plan.objects.filter(state=PlanState.APPLYING).values_list("pk", flat=True))
    for pk in ids:
        try:
            plan_advance(plan_id=pk)
        except Exception:  # one plan's trouble must not stop the others' rollout
            logger.exception("advancing plan %s failed", pk)
    return len(ids)


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
                    item.error = "Already released on the target (another plan or by hand)."
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
                error="Already released on the target.",
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
            deployment_id=item.deployment_id, runtime_version_id=plan.to_version_id, actor=actor
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
        raise ValidationError({"app_image": "Give a digest-pinned image (…@sha256:<64 hex>)."})
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
            raise Http404(f"No plan item {item_id}.")
        if item.state != PlanItemState.BUILDING:
            raise IllegalTransition(f"Plan item {item_id} is {item.state}, not building.")
        before = item.deployment.app_image
        Deployment.objects.filter(pk=item.deployment_id).update(app_image=app_image)
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
        _plan_fail(item.plan_id, f"Item {item.pk}: {item.error}")
    return item


def plan_item_app_image_failed(*, item_id: int, error: str, actor: Actor) -> PlanItem:
    """The app-image build of an image-mode item failed: the item fails and stops the plan."""
    with transaction.atomic():
        updated = PlanItem.objects.filter(pk=item_id, state=PlanItemState.BUILDING).update(
            state=PlanItemState.FAILED, error=error[:2000], updated_at=timezone.now()
        )
        item = PlanItem.objects.filter(pk=item_id).first()
        if item is None:
            raise Http404(f"No plan item {item_id}.")
        if not updated:
            raise IllegalTransition(f"Plan item {item_id} is {item.state}, not building.")
        audit_record(
            actor=actor, action="plan_item.app_image_failed", obj=item, after={"error": error}
        )
    _plan_fail(item.plan_id, f"The app-image build of item {item.pk} failed: {error}")
    return item


# --- CD's reports ----------------------------------------------------------------------------


def release_status_report(*, release_id: int, status: str, note: str, actor: Actor) -> Release:
    """Record what CD says of a release: deployed, healthy or failed.

    A failed release takes no further report (409: roll back or release again); the same
    status may be reported again (its note and time are updated). A release made by a plan
    moves its item (healthy/failed); a failure stops the plan, a healthy report may advance it.

    Raises:
        ValidationError: a status other than deployed|healthy|failed, or a note over 500.
        Http404: no such release.
        PermissionDenied: not a developer of the service's team, nor a platform admin.
        IllegalTransition: the release was already reported failed.
    """
    if status not in REPORTABLE_STATUSES:
        raise ValidationError({"status": "Report one of: deployed, healthy, failed."})
    note = note or ""
    if len(note) > 500:
        raise ValidationError({"note": "At most 500 characters."})
    release = (
        Release.objects.select_related("deployment__service__team", "deployment__environment")
        .filter(pk=release_id)
        .first()
    )
    if release is None:
        raise Http404(f"No release {release_id}.")
    team = release.deployment.service.team
    role = actor.role_in(team)
    if not actor.is_platform_admin and (role is None or not role_at_least(role, Role.DEVELOPER)):
        raise PermissionDenied(
            f"Only team {team.name} (developer or above) or a platform admin may report the "
            "status of this release."
        )
    with transaction.atomic():
        before = release.status
        updated = (
            Release.objects.filter(pk=release.pk)
            .exclude(status=ReleaseStatus.FAILED)
            .update(status=status, status_note=note, status_at=timezone.now())
        )
        if not updated:
            raise IllegalTransition(
                f"Release {release} was reported failed; a failed release takes no further "
                "report (roll back or create a new release)."
            )
        release.refresh_from_db(fields=["status", "status_note", "status_at"])
        audit_record(
            actor=actor,
            action="release.status",
            obj=release,
            before={"status": before},
            after={"status": status, "note": note},
        )
        item = PlanItem.objects.filter(release_id=release.pk).only("pk", "plan_id").first()
        if item is not None and status == ReleaseStatus.HEALTHY:
            PlanItem.objects.filter(pk=item.pk, state=PlanItemState.RELEASED).update(
                state=PlanItemState.HEALTHY, updated_at=timezone.now()
            )
        elif item is not None and status == ReleaseStatus.FAILED:
            PlanItem.objects.filter(
                pk=item.pk, state__in=[PlanItemState.RELEASED, PlanItemState.HEALTHY]
            ).update(state=PlanItemState.FAILED, error=note[:2000], updated_at=timezone.now())
            _plan_fail(item.plan_id, f"Release {release} was reported failed: {note}")
    if item is not None and status == ReleaseStatus.HEALTHY:
        plan_advance(plan_id=item.plan_id)
    return release


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
    if not targeted and not Deployment.objects.filter(runtime_version_id=old_version_id).exists():
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
