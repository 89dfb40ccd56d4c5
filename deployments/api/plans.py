"""API of rebase and migration plans: dry run (create), read, and the rollout's transitions.

`GET/POST /api/v1/rebase-plans/`, `GET/POST /api/v1/migration-plans/`, `GET …/{id}/` (the
plan, its counts and its first PORTAL_PLAN_DETAIL_ITEMS items), `GET …/{id}/items/`
(paginated), `POST …/{id}/apply|pause|resume|abort|retry-failed/`. Reading needs
deployments:read (a team sees the plans holding its services, and only their items); writing
needs deployments:write and a platform admin behind the request (the services check).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from portal.actors import Actor
from portal.choices import Scope

from ..choices import PlanKind
from ..models import Plan, PlanItem
from ..selectors.plans import plan_items_for_actor, plan_summary, plans_for_actor
from ..services import (
    MAX_DEPLOYMENT_IDS,
    migration_plan_create,
    plan_abort,
    plan_apply,
    plan_pause,
    plan_resume,
    plan_retry_failed,
    rebase_plan_create,
)


class PlanItemSerializer(serializers.ModelSerializer):
    """One deployment's move: verdict, findings, wave, state and the release it produced."""

    service = serializers.CharField(source="deployment.service.name", read_only=True)
    team = serializers.CharField(source="deployment.service.team.name", read_only=True)
    environment = serializers.CharField(source="deployment.environment.name", read_only=True)
    mode = serializers.CharField(source="deployment.mode", read_only=True)
    release_number = serializers.IntegerField(
        source="release.number", read_only=True, default=None, allow_null=True
    )
    release_status = serializers.CharField(
        source="release.status", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = PlanItem
        fields = [
            "id",
            "deployment",
            "service",
            "team",
            "environment",
            "mode",
            "from_version",
            "target_version",
            "verdict",
            "findings",
            "state",
            "wave",
            "release",
            "release_number",
            "release_status",
            "build_job",
            "error",
            "updated_at",
        ]


class PlanSerializer(serializers.ModelSerializer):
    """A plan as listed."""

    items_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    created_by = serializers.CharField(source="created_by_repr", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Plan
        fields = [
            "id",
            "kind",
            "state",
            "from_version",
            "to_version",
            "selector",
            "wave_size",
            "soak_seconds",
            "current_wave",
            "created_by",
            "note",
            "error",
            "created_at",
            "applied_at",
            "wave_started_at",
            "finished_at",
            "items_count",
            "url",
        ]

    def get_url(self, plan: Plan) -> str:
        prefix = "rebase-plan" if plan.kind == PlanKind.REBASE else "migration-plan"
        return reverse(f"api:{prefix}-detail", kwargs={"pk": plan.pk})


class RebasePlanCreateSerializer(serializers.Serializer):
    """Input of POST /rebase-plans/."""

    from_version = serializers.IntegerField(min_value=1)
    to_version = serializers.IntegerField(min_value=1)
    wave_size = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    soak_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0)


class MigrationPlanCreateSerializer(serializers.Serializer):
    """Input of POST /migration-plans/: `deployments` ids, or a selector (AND-combined)."""

    target = serializers.IntegerField(min_value=1)
    deployments = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=True,
        max_length=MAX_DEPLOYMENT_IDS,
    )
    team = serializers.CharField(required=False, allow_blank=True, max_length=100)
    environment = serializers.CharField(required=False, allow_blank=True, max_length=50)
    base_image = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    wave_size = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    soak_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0)


def plan_detail(plan: Plan, actor: Actor) -> dict[str, Any]:
    """The plan, its counts (over the items `actor` may read) and its first items."""
    items = plan_items_for_actor(plan, actor)
    cap = settings.PORTAL_PLAN_DETAIL_ITEMS
    body: dict[str, Any] = dict(PlanSerializer(plan).data)
    summary = plan_summary(plan, items=items)
    body["items_count"] = summary["total"]
    body["summary"] = summary
    body["items"] = PlanItemSerializer(items[:cap], many=True).data
    body["items_truncated"] = summary["total"] > cap
    body["items_url"] = body["url"] + "items/"
    return body


class _PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    kind = ""
    required_scopes = {
        "list": Scope.DEPLOYMENTS_READ,
        "retrieve": Scope.DEPLOYMENTS_READ,
        "items": Scope.DEPLOYMENTS_READ,
        "create": Scope.DEPLOYMENTS_WRITE,
        "apply": Scope.DEPLOYMENTS_WRITE,
        "pause": Scope.DEPLOYMENTS_WRITE,
        "resume": Scope.DEPLOYMENTS_WRITE,
        "abort": Scope.DEPLOYMENTS_WRITE,
        "retry_failed": Scope.DEPLOYMENTS_WRITE,
    }
    serializer_class = PlanSerializer

    def get_queryset(self) -> QuerySet[Plan]:
        if getattr(self, "swagger_fake_view", False):
            return Plan.objects.none()
        plans = plans_for_actor(Actor.from_request(self.request)).filter(kind=self.kind)
        if self.action == "list":
            plans = plans.annotate(items_count=Count("items"))
        return plans

    def _detail(self, plan: Plan, code: int = status.HTTP_200_OK) -> Response:
        return Response(plan_detail(plan, Actor.from_request(self.request)), status=code)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The plan with its counts by state and wave and its first items."""
        return self._detail(self.get_object())

    @extend_schema(responses=PlanItemSerializer(many=True))
    @action(detail=True, methods=["get"])
    def items(self, request: Request, pk: str | None = None) -> Response:
        """The plan's items you may read, by wave (paginated)."""
        plan = self.get_object()
        page = self.paginate_queryset(plan_items_for_actor(plan, Actor.from_request(request)))
        return self.get_paginated_response(PlanItemSerializer(page, many=True).data)

    def _transition(self, service: Any) -> Response:
        plan = self.get_object()
        plan = service(plan_id=plan.pk, actor=Actor.from_request(self.request))
        return self._detail(Plan.objects.get(pk=plan.pk))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """draft → applying: the canary wave's releases are made by a job."""
        return self._transition(plan_apply)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        """applying → paused."""
        return self._transition(plan_pause)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """paused → applying."""
        return self._transition(plan_resume)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def abort(self, request: Request, pk: str | None = None) -> Response:
        """→ aborted; items not released are skipped."""
        return self._transition(plan_abort)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request: Request, pk: str | None = None) -> Response:
        """failed → applying; failed items are tried again."""
        return self._transition(plan_retry_failed)


class RebasePlanViewSet(_PlanViewSet):
    """Rebase plans: every deployment on a runtime version moves to a newer one of its line."""

    kind = PlanKind.REBASE

    @extend_schema(request=RebasePlanCreateSerializer, responses={201: PlanSerializer})
    def create(self, request: Request) -> Response:
        """The dry run: 201 with every affected deployment's verdict and wave."""
        data = RebasePlanCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        plan = rebase_plan_create(
            actor=Actor.from_request(request),
            from_version_id=v["from_version"],
            to_version_id=v["to_version"],
            wave_size=v.get("wave_size"),
            soak_seconds=v.get("soak_seconds"),
        )
        return self._detail(plan, status.HTTP_201_CREATED)


class MigrationPlanViewSet(_PlanViewSet):
    """OS migration plans: chosen deployments move to another image, the compatible ones."""

    kind = PlanKind.MIGRATION

    @extend_schema(request=MigrationPlanCreateSerializer, responses={201: PlanSerializer})
    def create(self, request: Request) -> Response:
        """The dry run: 201 with each chosen deployment's verdict, findings and wave."""
        data = MigrationPlanCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        plan = migration_plan_create(
            actor=Actor.from_request(request),
            target_version_id=v["target"],
            deployment_ids=v.get("deployments") or None,
            team=v.get("team") or None,
            environment=v.get("environment") or None,
            base_image_id=v.get("base_image"),
            wave_size=v.get("wave_size"),
            soak_seconds=v.get("soak_seconds"),
        )
        return self._detail(plan, status.HTTP_201_CREATED)
