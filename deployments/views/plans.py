"""Plan pages: the rebase and migration plans, one plan's waves and items, its actions.

The POST handlers call the plan engine (`deployments.services.plans`) by the names the API
uses too (`plan_apply`, `plan_pause` …), so the UI and the API call the same service. The
reads here are the pages' own: a page of plans with their counts by state (one aggregate
query for the whole page) and one plan's items, narrowed to the viewer's services.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, gettext_lazy, pgettext
from django.views import View
from rest_framework.exceptions import APIException

from images.choices import ImageKind, VersionState
from images.models import BaseImage, ImageVersion
from portal.actors import Actor
from portal.jobs import IllegalTransition

from ..choices import PlanItemState, PlanKind, PlanState, Verdict
from ..models import Plan, PlanItem
from ..selectors import team_readable
from ..services import plans as plans_engine
from ._common import _error_text, _page, _reader

# What the engine raises when it refuses (400 invalid, 403, 409 illegal transition): shown on
# the page as the reason, nothing changed.
REFUSALS = (ValidationError, APIException, PermissionDenied, IllegalTransition)

# URL action → the service's name (the API's POST …/{id}/<action>/ uses the same names).
PLAN_ACTIONS = {
    "apply": "plan_apply",
    "pause": "plan_pause",
    "resume": "plan_resume",
    "abort": "plan_abort",
    "retry-failed": "plan_retry_failed",
}

# Which buttons a plan in each state shows (the service guards the transition itself).
ACTIONS_BY_STATE: dict[str, tuple[str, ...]] = {
    PlanState.DRAFT: ("apply", "abort"),
    PlanState.APPLYING: ("pause", "abort"),
    PlanState.PAUSED: ("resume", "abort"),
    PlanState.FAILED: ("retry-failed", "abort"),
    PlanState.COMPLETED: (),
    PlanState.ABORTED: (),
}
ACTION_LABELS = {
    "apply": gettext_lazy("Apply"),
    "pause": gettext_lazy("Pause"),
    "resume": gettext_lazy("Resume"),
    "abort": gettext_lazy("Abort"),
    "retry-failed": gettext_lazy("Retry failed"),
}
FINAL_STATES = frozenset({PlanState.COMPLETED, PlanState.ABORTED})
MOVED_STATES = frozenset({PlanItemState.RELEASED, PlanItemState.HEALTHY})
NOT_MOVING_STATES = frozenset({PlanItemState.BLOCKED, PlanItemState.SKIPPED})
ITEM_PAGE_SIZE = 50


def plan_service(name: str) -> Callable[..., Plan]:
    """The plan engine's function `name` (deployments.services.plans)."""
    return cast("Callable[..., Plan]", getattr(plans_engine, name))


def _items_readable(actor: Actor) -> Q:
    """The plan items `actor` may see: those of the services of its teams (admins: all)."""
    return team_readable(actor, "deployment__service__team")


def plans_visible(actor: Actor) -> QuerySet[Plan]:
    """Plans `actor` may open: every plan for platform readers, else those with an item of
    one of the actor's services (an empty dry run is shown to platform readers only)."""
    plans = Plan.objects.select_related(
        "from_version__base_image", "to_version__base_image", "created_by"
    )
    if actor.is_platform_admin:
        return plans
    own = PlanItem.objects.filter(_items_readable(actor), plan=OuterRef("pk"))
    return plans.filter(Exists(own))


def plan_counts(plan_ids: list[int], actor: Actor) -> dict[int, dict[str, int]]:
    """{plan id: {item state: count, "total": n}} of the items `actor` sees, in one query."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        PlanItem.objects.filter(_items_readable(actor), plan_id__in=plan_ids)
        .values_list("plan_id", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for plan_id, state, n in rows:
        counts[plan_id][state] += n
        counts[plan_id]["total"] += n
    return counts


def plan_wave_counts(plan: Plan, actor: Actor) -> dict[int, dict[str, int]]:
    """{wave: {item state: count, "total": n}} of the items `actor` sees, in one query."""
    waves: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        PlanItem.objects.filter(_items_readable(actor), plan=plan)
        .values_list("wave", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for wave, state, n in rows:
        waves[wave][state] += n
        waves[wave]["total"] += n
    return waves


def _state_rows(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Counts in the order of the states' life, for badges (zero counts left out)."""
    return [
        {"state": value, "label": label, "count": counts.get(value, 0)}
        for value, label in PlanItemState.choices
        if counts.get(value, 0)
    ]


def _progress(counts: dict[str, int]) -> dict[str, int]:
    """Moved (released or healthy) items over the items the plan moves (not blocked/skipped)."""
    moving = counts.get("total", 0) - sum(counts.get(s, 0) for s in NOT_MOVING_STATES)
    moved = sum(counts.get(s, 0) for s in MOVED_STATES)
    percent = round(100 * moved / moving) if moving else 0
    return {"moved": moved, "moving": moving, "percent": percent}


def source_labels(plans: list[Plan]) -> dict[int, str]:
    """{plan id: what it moves from}: the old version (rebase) or the migration's choice.

    A migration's selector names its source image by id (`base_image`/`base_image_id`); the
    names of a whole page's images are read in one query.
    """

    def image_id(plan: Plan) -> int | None:
        selector = plan.selector if isinstance(plan.selector, dict) else {}
        value = selector.get("base_image_id", selector.get("base_image"))
        return value if isinstance(value, int) else None

    ids = {i for p in plans if p.from_version_id is None and (i := image_id(p)) is not None}
    names = dict(BaseImage.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    labels = {}
    for plan in plans:
        version = plan.from_version
        if version is not None:
            labels[plan.pk] = f"{version.base_image.name}:{version.tag}"
            continue
        selector = plan.selector if isinstance(plan.selector, dict) else {}
        parts = [names.get(image_id(plan) or 0, "")]
        if selector.get("team"):
            parts.append(f"team {selector['team']}")
        if selector.get("environment"):
            parts.append(f"in {selector['environment']}")
        if selector.get("deployments") or selector.get("deployment_ids"):
            parts.append("chosen deployments")
        labels[plan.pk] = " · ".join(p for p in parts if p) or "chosen deployments"
    return labels


class PlanFilterForm(forms.Form):
    """The plan list's filters (kind, state)."""

    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        choices=[("", gettext_lazy("Any kind")), *PlanKind.choices],
        required=False,
    )
    state = forms.ChoiceField(
        label=gettext_lazy("State"),
        choices=[("", gettext_lazy("Any state")), *PlanState.choices],
        required=False,
    )


class PlanListView(LoginRequiredMixin, View):
    """Rebase and migration plans, newest first, with their counts by item state."""

    template_name = "deployments/plan_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        actor = _reader(request)
        form = PlanFilterForm(request.GET)
        plans = plans_visible(actor)
        if form.is_valid():
            if form.cleaned_data["kind"]:
                plans = plans.filter(kind=form.cleaned_data["kind"])
            if form.cleaned_data["state"]:
                plans = plans.filter(state=form.cleaned_data["state"])
        context = _page(request, plans)
        rows = list(context["page"].object_list)
        counts = plan_counts([p.pk for p in rows], actor)
        labels = source_labels(rows)
        context.update(
            {
                "form": form,
                "rows": [
                    {
                        "plan": plan,
                        "source": labels[plan.pk],
                        "states": _state_rows(counts.get(plan.pk, {})),
                        "total": counts.get(plan.pk, {}).get("total", 0),
                        "progress": _progress(counts.get(plan.pk, {})),
                    }
                    for plan in rows
                ],
                "is_admin": actor.is_platform_admin,
                "filtered": bool(request.GET.get("kind") or request.GET.get("state")),
            }
        )
        return render(request, self.template_name, context)


class ItemFilterForm(forms.Form):
    """A plan page's item filters (verdict, state)."""

    verdict = forms.ChoiceField(
        label=gettext_lazy("Verdict"),
        choices=[("", gettext_lazy("Any verdict")), *Verdict.choices],
        required=False,
    )
    item_state = forms.ChoiceField(
        label=gettext_lazy("Item state"),
        choices=[("", gettext_lazy("Any state")), *PlanItemState.choices],
        required=False,
    )


class PlanDetailView(LoginRequiredMixin, View):
    """One plan: from → to, state, counts and progress, the waves and their items.

    An htmx request (the page polling itself every 2 s while the plan applies) gets the
    live part only; the polling stops when a state other than `applying` is rendered.
    """

    template_name = "deployments/plan_detail.html"
    partial_name = "deployments/plan_detail_partial.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        actor = _reader(request)
        plan = get_object_or_404(plans_visible(actor), pk=pk)
        filters = ItemFilterForm(request.GET)
        items = (
            PlanItem.objects.filter(_items_readable(actor), plan=plan)
            .select_related(
                "deployment__service__team",
                "deployment__environment",
                "from_version",
                "target_version",
                "release",
            )
            .order_by("wave", "id")
        )
        if filters.is_valid():
            if filters.cleaned_data["verdict"]:
                items = items.filter(verdict=filters.cleaned_data["verdict"])
            if filters.cleaned_data["item_state"]:
                items = items.filter(state=filters.cleaned_data["item_state"])
        context = _page(request, items)
        waves = plan_wave_counts(plan, actor)
        totals: dict[str, int] = defaultdict(int)
        for counts in waves.values():
            for state, n in counts.items():
                totals[state] += n
        grouped: dict[int, list[PlanItem]] = defaultdict(list)
        for item in context["page"].object_list:
            grouped[item.wave].append(item)
        is_admin = actor.is_platform_admin
        context.update(
            {
                "plan": plan,
                "source_label": source_labels([plan])[plan.pk],
                "filters": filters,
                "states": _state_rows(totals),
                "total": totals.get("total", 0),
                "progress": _progress(totals),
                "waves": [
                    {
                        "number": wave,
                        "name": "Canary" if wave == 0 else f"Wave {wave}",
                        "states": _state_rows(waves[wave]),
                        "total": waves[wave].get("total", 0),
                        "items": grouped.get(wave, []),
                        "current": wave == plan.current_wave
                        and plan.state in (PlanState.APPLYING, PlanState.PAUSED),
                    }
                    for wave in sorted(waves)
                ],
                "live": plan.state == PlanState.APPLYING,
                "is_admin": is_admin,
                "actions": [
                    {"name": name, "label": ACTION_LABELS[name]}
                    for name in (ACTIONS_BY_STATE.get(plan.state, ()) if is_admin else ())
                ],
                "is_final": plan.state in FINAL_STATES,
                "scoped": not is_admin,
            }
        )
        template = self.partial_name if request.headers.get("HX-Request") else self.template_name
        return render(request, template, context)


class PlanActionView(LoginRequiredMixin, View):
    """POST apply | pause | resume | abort | retry-failed (platform admins)."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        name = PLAN_ACTIONS.get(action)
        if name is None:
            raise Http404(
                gettext("No plan action %(action)r: use one of %(PLAN_ACTIONS)s.")
                % {"action": action, "PLAN_ACTIONS": ", ".join(PLAN_ACTIONS)}
            )
        actor = Actor(user=request.user)
        if not actor.is_platform_admin:
            raise PermissionDenied(
                gettext_lazy("Only platform admins apply, pause, resume or abort plans.")
            )
        plan = get_object_or_404(Plan, pk=pk)
        service = plan_service(name)
        try:
            plan = service(plan_id=plan.pk, actor=actor)
        except REFUSALS as exc:
            messages.error(
                request,
                gettext("%(action)s refused: %(error)s")
                % {"action": ACTION_LABELS[action], "error": _error_text(exc)},
            )
        else:
            messages.success(
                request,
                gettext("%(action)s: the plan is now %(state)s.")
                % {"action": ACTION_LABELS[action], "state": plan.get_state_display()},
            )
        return redirect("deployments:plan-detail", pk=pk)


def approved_runtime_versions() -> QuerySet[ImageVersion]:
    """Approved runtime image versions, for the targets of a plan."""
    return (
        ImageVersion.objects.filter(base_image__kind=ImageKind.RUNTIME, state=VersionState.APPROVED)
        .select_related("base_image")
        .order_by("base_image__name", "-created_at")
    )


class RebasePlanForm(forms.Form):
    """The rebase plan's dry run: from a (superseded) version to its replacement."""

    from_version = forms.ModelChoiceField(
        queryset=ImageVersion.objects.filter(base_image__kind=ImageKind.RUNTIME)
        .exclude(state=VersionState.CANDIDATE)
        .select_related("base_image"),
        label=gettext_lazy("From (the version being replaced)"),
    )
    to_version = forms.ModelChoiceField(
        queryset=approved_runtime_versions(), label=gettext_lazy("To (an approved version)")
    )
    wave_size = forms.IntegerField(
        label=gettext_lazy("Wave size"),
        min_value=1,
        max_value=1000,
        required=False,
        help_text=gettext_lazy("Deployments per wave (blank: the default)."),
    )
    soak_seconds = forms.IntegerField(
        label=gettext_lazy("Soak seconds"),
        min_value=0,
        max_value=7 * 24 * 3600,
        required=False,
        help_text=gettext_lazy(
            "Advance a wave after this long without a failure report (blank: default)."
        ),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        old, new = data.get("from_version"), data.get("to_version")
        if old is not None and new is not None and old.pk == new.pk:
            raise ValidationError(gettext_lazy("A version cannot be rebased onto itself."))
        return data


def _admin(request: HttpRequest, what: str) -> Actor:
    """The platform admin behind `request`; `what` completes "Only platform admins …"."""
    actor = Actor(user=request.user)
    if not actor.is_platform_admin:
        raise PermissionDenied(gettext("Only platform admins %(what)s.") % {"what": what})
    return actor


class RebasePlanCreateView(LoginRequiredMixin, View):
    """A small form: from version → to version, then a dry-run plan (platform admins)."""

    template_name = "deployments/rebase_plan_form.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        _admin(request, pgettext("platform admins …", "plan rebases"))
        initial: dict[str, Any] = {}
        from_id = request.GET.get("from_version", "")
        if from_id.isdigit():
            old = ImageVersion.objects.filter(pk=int(from_id)).first()
            if old is not None:
                initial["from_version"] = old.pk
                newer = old.superseded_by_id or (
                    approved_runtime_versions()
                    .filter(base_image_id=old.base_image_id)
                    .values_list("pk", flat=True)
                    .first()
                )
                if newer:
                    initial["to_version"] = newer
        form = RebasePlanForm(initial=initial)
        return render(request, self.template_name, {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        actor = _admin(request, pgettext("platform admins …", "plan rebases"))
        form = RebasePlanForm(request.POST)
        if form.is_valid():
            create = plan_service("rebase_plan_create")
            data = form.cleaned_data
            try:
                plan = create(
                    actor=actor,
                    from_version_id=data["from_version"].pk,
                    to_version_id=data["to_version"].pk,
                    wave_size=data["wave_size"],
                    soak_seconds=data["soak_seconds"],
                )
            except REFUSALS as exc:
                form.add_error(None, _error_text(exc))
            else:
                messages.success(
                    request, gettext("Dry run ready: review the verdicts, then apply.")
                )
                return redirect("deployments:plan-detail", pk=plan.pk)
        return render(request, self.template_name, {"form": form}, status=400)
