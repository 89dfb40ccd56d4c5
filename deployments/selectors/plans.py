"""Reads of rebase and migration plans: who sees which plans and items, a plan's counts, and
the ABI verdict of one binary against a target image (an adapter over the compat seam).

The facts come from the compat readers (`deployments.selectors.compat.binary_facts`,
`images.compat_selectors.image_facts_from_abi`); `verdict_against` adds the plan's own cases
(a deployment without a binary, a target never scanned) around `binary_verdict`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from images.compat.verdict import CompatFinding, ImageFacts, VerdictResult, binary_verdict
from images.compat_selectors import image_facts_from_abi as compat_image_facts
from images.models import ImageAbi, ImageVersion
from portal.actors import Actor

from ..choices import PlanItemState, PlanState, Verdict
from ..models import BinaryVersion, Plan, PlanItem
from . import team_readable
from .compat import binary_facts

# Items a plan is still working on (the rest are final: healthy, failed, blocked, skipped,
# or released and waiting for CD's report).
OPEN_ITEM_STATES = frozenset({PlanItemState.PENDING, PlanItemState.BUILDING})
ACTIVE_PLAN_STATES = frozenset(
    {PlanState.DRAFT, PlanState.APPLYING, PlanState.PAUSED, PlanState.FAILED}
)


# --- the verdict adapter ---------------------------------------------------------------------


def image_facts_from_abi(version: ImageVersion, abi: ImageAbi | None) -> ImageFacts | None:
    """The compat module's view of an image version from its ImageAbi row (None: not read)."""
    return None if abi is None else compat_image_facts(version, abi)


def image_abi_of(version: ImageVersion) -> ImageAbi | None:
    """The ImageAbi of `version`'s scanned digest (one query; None when never scanned)."""
    if version.sbom_id is None:
        return None
    return ImageAbi.objects.filter(sbom_id=version.sbom_id).first()


def image_facts(version: ImageVersion) -> ImageFacts | None:
    """`version`'s ABI facts, None when the version has no ImageAbi yet."""
    return image_facts_from_abi(version, image_abi_of(version))


NOT_SCANNED = CompatFinding(
    key="target.not_scanned",
    severity="medium",
    blocking=False,
    title="The target image has no ABI facts yet",
    detail="The target version was not scanned, so its libraries are unknown.",
    remediation="Scan the target image version, then create the plan again.",
)


def verdict_against(binary: BinaryVersion | None, target: ImageFacts | None) -> VerdictResult:
    """The verdict of `binary` on an image whose facts are `target` (no query)."""
    if binary is None:
        return VerdictResult(
            Verdict.INCOMPATIBLE,
            (
                CompatFinding(
                    key="deployment.no_binary",
                    severity="high",
                    blocking=True,
                    title="The deployment has no binary version",
                    remediation="Upload a binary version and release it first.",
                ),
            ),
        )
    if target is None:
        return VerdictResult(Verdict.UNKNOWN, (NOT_SCANNED,))
    return binary_verdict(binary_facts(binary), target)


def binary_verdict_for(binary: BinaryVersion, version: ImageVersion) -> VerdictResult:
    """The verdict of running `binary` on image `version` (one query for its ABI facts)."""
    return verdict_against(binary, image_facts(version))


def finding_dict(finding: CompatFinding) -> dict[str, Any]:
    """A finding as stored on a plan item."""
    return {
        "key": finding.key,
        "severity": finding.severity,
        "blocking": finding.blocking,
        "title": finding.title,
        "detail": finding.detail,
        "remediation": finding.remediation,
    }


# --- plans -----------------------------------------------------------------------------------


def plan_items_for_actor(plan: Plan, actor: Actor) -> QuerySet[PlanItem]:
    """The items of `plan` that `actor` may read (a team: its services'; admins: all)."""
    return (
        PlanItem.objects.filter(plan=plan)
        .filter(team_readable(actor, "deployment__service__team"))
        .select_related(
            "deployment__service__team",
            "deployment__environment",
            "from_version__base_image",
            "target_version__base_image",
            "release",
        )
        .order_by("wave", "id")
    )


def plans_for_actor(actor: Actor) -> QuerySet[Plan]:
    """Plans `actor` may read: platform admins every plan; a team the plans that hold at
    least one item of its services (one query, the team check is a subquery)."""
    plans = Plan.objects.select_related(
        "from_version__base_image", "to_version__base_image", "created_by"
    ).order_by("-created_at", "-id")
    if actor.is_platform_admin:
        return plans
    visible = PlanItem.objects.filter(plan=OuterRef("pk")).filter(
        team_readable(actor, "deployment__service__team")
    )
    return plans.filter(Exists(visible))


def plan_summary(plan: Plan, *, items: QuerySet[PlanItem] | None = None) -> dict[str, Any]:
    """Counts of `plan`'s items (or of `items`, e.g. one team's) by state, by verdict and by
    wave, the current wave and the percent done; two grouped queries whatever the size."""
    items = PlanItem.objects.filter(plan=plan) if items is None else items
    rows = items.order_by().values("wave", "state").annotate(n=Count("id"))
    by_state: Counter[str] = Counter()
    by_wave: dict[int, Counter[str]] = {}
    for row in rows:
        by_state[row["state"]] += row["n"]
        by_wave.setdefault(row["wave"], Counter())[row["state"]] += row["n"]
    verdicts = items.order_by().values("verdict").annotate(n=Count("id"))
    total = sum(by_state.values())
    done_states = (
        PlanItemState.HEALTHY,
        PlanItemState.FAILED,
        PlanItemState.BLOCKED,
        PlanItemState.SKIPPED,
    )
    done = sum(by_state[s] for s in done_states)
    # A released item waits for CD's report; count it half done so progress moves on release.
    progress = (done + by_state[PlanItemState.RELEASED] / 2) / total * 100 if total else 100.0
    if plan.state == PlanState.COMPLETED:
        progress = 100.0
    return {
        "total": total,
        "by_state": {state: by_state.get(state, 0) for state in PlanItemState.values},
        "by_verdict": {row["verdict"]: row["n"] for row in verdicts},
        "by_wave": [
            {"wave": wave, "total": sum(c.values()), "by_state": dict(c)}
            for wave, c in sorted(by_wave.items())
        ],
        "waves": len(by_wave),
        "current_wave": plan.current_wave,
        "progress_percent": round(progress, 1),
    }


def plan_open_items(plan: Plan) -> QuerySet[PlanItem]:
    """Items of `plan` not yet released (pending or building)."""
    return PlanItem.objects.filter(plan=plan, state__in=OPEN_ITEM_STATES)


def plan_blocked_filter() -> Q:
    """Items that can never be released by the plan."""
    return Q(state__in=[PlanItemState.BLOCKED, PlanItemState.SKIPPED])
