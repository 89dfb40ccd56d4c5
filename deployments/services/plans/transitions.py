"""A plan's guarded transitions: apply, pause, resume, abort, retry-failed, advance.

See the package docstring for the plan and item states."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Min
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from portal.actors import Actor
from portal.audit import audit_record
from portal.jobs import IllegalTransition, job_create
from portal.models import Job
from portal.templatetags.portal_i18n import status_label

from ...choices import (
    PlanItemState,
    PlanState,
    ReleaseStatus,
)
from ...models import Plan, PlanItem, Release
from ...selectors.plans import (
    OPEN_ITEM_STATES,
)
from .dryrun import PLAN_WAVE_JOB_KIND, _announce, _plan_actor, _require_admin

logger = logging.getLogger(__name__)

# --- transitions -----------------------------------------------------------------------------


def _transition(plan_id: int, *, from_states: set[str], to: str, **fields: Any) -> Plan:
    """Guarded state change of a plan; IllegalTransition (409) when it is elsewhere."""
    updated = Plan.objects.filter(pk=plan_id, state__in=from_states).update(
        state=to, updated_at=timezone.now(), **fields
    )
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise Http404(gettext("No plan %(plan_id)s.") % {"plan_id": plan_id})
    if not updated:
        allowed = ", ".join(sorted(from_states))
        raise IllegalTransition(
            gettext(
                "Plan #%(plan_id)s is %(state)s; it cannot become %(to)s (allowed from: "
                "%(allowed)s)."
            )
            % {"plan_id": plan_id, "state": status_label(plan.state), "to": to, "allowed": allowed}
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


def _get_plan(plan_id: int) -> Plan:
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise Http404(gettext("No plan %(plan_id)s.") % {"plan_id": plan_id})
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
            state=PlanItemState.SKIPPED,
            error=gettext_noop("The plan was aborted."),
            updated_at=timezone.now(),
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
        _plan_fail(
            plan.pk,
            gettext_noop("%(count)s item(s) of wave %(wave)s failed.")
            % {"count": counts[PlanItemState.FAILED], "wave": wave},
        )
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
