"""The dry run's parts: the candidates of a plan, their verdicts, items and waves.

See the package docstring for the plan and item states."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils.translation import gettext, gettext_noop, pgettext_lazy

from images.choices import ImageKind, VersionState
from images.models import ImageAbi, ImageVersion
from portal.actors import Actor
from portal.events import EventType, event_emit
from portal.templatetags.portal_i18n import status_label

from ...choices import (
    PlanItemState,
    PlanKind,
    ReleaseStatus,
    Verdict,
)
from ...models import BinaryVersion, Deployment, Plan, PlanItem
from ...selectors.plans import (
    ACTIVE_PLAN_STATES,
    OPEN_ITEM_STATES,
    finding_dict,
    image_facts_from_abi,
    verdict_against,
)

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


# Completes "Only a platform admin may %(what)s rebase and migration plans.".
_PLAN_VERBS = {
    "create": pgettext_lazy("may … plans", "create"),
    "apply": pgettext_lazy("may … plans", "apply"),
    "pause": pgettext_lazy("may … plans", "pause"),
    "resume": pgettext_lazy("may … plans", "resume"),
    "abort": pgettext_lazy("may … plans", "abort"),
    "retry": pgettext_lazy("may … plans", "retry"),
}


def _require_admin(actor: Actor, what: str) -> None:
    """Refuse (403) unless a platform admin; `what` is one of `_PLAN_VERBS`' keys."""
    if not actor.is_platform_admin:
        raise PermissionDenied(
            gettext("Only a platform admin may %(what)s rebase and migration plans.")
            % {"what": _PLAN_VERBS.get(what, what)}
        )


def _plan_actor(plan: Plan) -> Actor:
    """Who the plan's releases are made by (a platform admin is no member of service teams)."""
    return Actor.system_actor(f"plan:{plan.pk}")


def _version(pk: int, field: str) -> ImageVersion:
    version = ImageVersion.objects.select_related("base_image", "registry").filter(pk=pk).first()
    if version is None:
        raise ValidationError({field: gettext("No image version %(pk)s.") % {"pk": pk}})
    return version


def _check_target(target: ImageVersion, field: str) -> None:
    if target.base_image.kind != ImageKind.RUNTIME:
        raise ValidationError(
            {
                field: gettext("%(target)s is a %(kind)s image; move deployments to a runtime.")
                % {"target": target, "kind": status_label(target.base_image.kind)}
            }
        )
    if target.state != VersionState.APPROVED:
        raise ValidationError(
            {
                field: gettext("%(target)s is %(state)s; only an approved version can be a target.")
                % {"target": target, "state": status_label(target.state)}
            }
        )


def _check_wave_options(wave_size: int | None, soak_seconds: int | None) -> tuple[int, int]:
    size = settings.PORTAL_PLAN_WAVE_SIZE if wave_size is None else wave_size
    soak = settings.PORTAL_PLAN_SOAK_SECONDS if soak_seconds is None else soak_seconds
    if not 1 <= size <= MAX_WAVE_SIZE:
        raise ValidationError(
            {
                "wave_size": gettext("Give a wave size from 1 to %(MAX_WAVE_SIZE)s.")
                % {"MAX_WAVE_SIZE": MAX_WAVE_SIZE}
            }
        )
    if not 0 <= soak <= MAX_SOAK_SECONDS:
        raise ValidationError(
            {
                "soak_seconds": gettext("Give 0 to %(MAX_SOAK_SECONDS)s seconds.")
                % {"MAX_SOAK_SECONDS": MAX_SOAK_SECONDS}
            }
        )
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
            error = gettext_noop(
                "The verdict is unknown; a migration releases only compatible binaries."
            )
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


def _announce(plan: Plan, verb: str, before: str) -> None:
    """`rebase_plan.changed` (rebase and migration plans alike) to the platform teams: a plan
    moves many teams' deployments, so no single team owns it."""
    event_emit(
        type=EventType.REBASE_PLAN_CHANGED,
        team=None,
        subject=f"plans/{plan.pk}",
        data={"id": plan.pk, "kind": plan.kind, "change": verb, "from": before, "to": plan.state},
    )
