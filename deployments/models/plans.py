"""Plans that move deployments to another runtime image version, in reviewed waves.

A rebase moves every deployment on a superseded or vulnerable version to its replacement
(volume mode: a new release on the new digest; image mode: an app-image rebuild, then a
release). An OS migration moves chosen deployments to another image, only where each binary
is compatible with the target's ABI. Both are a dry run (`draft`) until applied.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from ..choices import PlanItemState, PlanKind, PlanState, Verdict


class Plan(models.Model):
    """A rebase or OS migration plan (`kind`); `RebasePlan`/`MigrationPlan` are its proxies."""

    kind = models.CharField(max_length=10, choices=PlanKind.choices)
    state = models.CharField(
        max_length=10, choices=PlanState.choices, default=PlanState.DRAFT, db_index=True
    )
    from_version = models.ForeignKey(
        "images.ImageVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The version being replaced (a rebase); blank for a migration's selector.",
    )
    to_version = models.ForeignKey(
        "images.ImageVersion", on_delete=models.PROTECT, related_name="+"
    )
    selector = models.JSONField(
        default=dict, blank=True, help_text="A migration's choice: deployments, team, env, image."
    )
    wave_size = models.PositiveIntegerField(default=10)
    soak_seconds = models.PositiveIntegerField(default=0)
    current_wave = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_repr = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    wave_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} plan #{self.pk} → {self.to_version_id} ({self.state})"


class RebasePlanManager(models.Manager["RebasePlan"]):
    def get_queryset(self) -> models.QuerySet[RebasePlan]:
        return super().get_queryset().filter(kind=PlanKind.REBASE)


class MigrationPlanManager(models.Manager["MigrationPlan"]):
    def get_queryset(self) -> models.QuerySet[MigrationPlan]:
        return super().get_queryset().filter(kind=PlanKind.MIGRATION)


class RebasePlan(Plan):
    """A plan of kind rebase (DESIGN's RebasePlan)."""

    objects = RebasePlanManager()  # type: ignore[misc]  # a proxy narrows its manager

    class Meta:
        proxy = True


class MigrationPlan(Plan):
    """A plan of kind migration (DESIGN's MigrationPlan)."""

    objects = MigrationPlanManager()  # type: ignore[misc]  # a proxy narrows its manager

    class Meta:
        proxy = True


class PlanItem(models.Model):
    """One deployment's move: its ABI verdict against the target, wave, state and release."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="items")
    deployment = models.ForeignKey(
        "deployments.Deployment", on_delete=models.PROTECT, related_name="plan_items"
    )
    from_version = models.ForeignKey(
        "images.ImageVersion", on_delete=models.PROTECT, related_name="+"
    )
    target_version = models.ForeignKey(
        "images.ImageVersion", on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(max_length=14, choices=Verdict.choices)
    findings = models.JSONField(
        default=list,
        blank=True,
        help_text="[{key, severity, blocking, title, detail, remediation}]",
    )
    state = models.CharField(
        max_length=10, choices=PlanItemState.choices, default=PlanItemState.PENDING, db_index=True
    )
    wave = models.PositiveIntegerField(default=0, help_text="0 is the canary wave.")
    release = models.ForeignKey(
        "deployments.Release", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    build_job = models.ForeignKey(
        "portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["wave", "id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "deployment"], name="planitem_unique"),
            # A deployment never gets two releases for the same target.
            models.UniqueConstraint(
                fields=["deployment", "target_version"],
                condition=Q(release__isnull=False),
                name="planitem_one_release_per_target",
            ),
        ]

    def __str__(self) -> str:
        return f"plan {self.plan_id}: {self.deployment_id} ({self.state})"
