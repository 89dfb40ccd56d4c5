"""Findings (a scanned digest × package × advisory) and waivers (reviewed, expiring exceptions).

A finding belongs to the scanned digest (`Sbom`), so an image version and a binary version
with the same bytes share it; image versions reach theirs through `ImageVersion.sbom`, binary
versions through `BinaryVersion.sbom` (deployments). Findings are resolved, never deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When

from ..choices import (
    SEVERITY_RANK,
    FindingResolution,
    FixState,
    Severity,
    VexJustification,
    VexStatus,
    WaiverScope,
    WaiverState,
)


class Finding(models.Model):
    """An advisory affects a package of a scanned digest."""

    sbom = models.ForeignKey("images.Sbom", on_delete=models.CASCADE, related_name="findings")
    package = models.ForeignKey("images.Package", on_delete=models.PROTECT, related_name="+")
    advisory = models.ForeignKey(
        "images.Advisory", on_delete=models.PROTECT, related_name="findings"
    )
    installed_version = models.CharField(max_length=255)
    fixed_version = models.CharField(max_length=255, blank=True)
    fix_state = models.CharField(max_length=14, choices=FixState.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, db_index=True)
    matched_name = models.CharField(
        max_length=255, blank=True, help_text="The binary or source name the advisory names."
    )
    needs_review = models.CharField(
        max_length=300, blank=True, help_text="Why the versions could not be compared."
    )
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=FindingResolution.choices, blank=True)
    # The worst-first order of a findings list (`FINDING_ORDER`) as columns of this table, so
    # one index answers a keyset page at any depth: the two ranks are computed by the database
    # from `severity` and `fix_state` (whoever writes them), the package's name is copied when
    # the finding is made (a package's name is part of its identity, it never changes). Every
    # column ascends, so a page's cursor is one row comparison on the index (`portal.keyset`).
    severity_order = models.GeneratedField(
        expression=Case(
            *(
                When(severity=s, then=Value(max(SEVERITY_RANK.values()) - rank))
                for s, rank in SEVERITY_RANK.items()
            ),
            default=Value(max(SEVERITY_RANK.values())),
        ),
        output_field=models.SmallIntegerField(),
        db_persist=True,
        help_text="0 for critical … 5 for unknown (the worst first).",
    )
    fix_rank = models.GeneratedField(
        expression=Case(When(fix_state=FixState.FIXED, then=Value(0)), default=Value(1)),
        output_field=models.SmallIntegerField(),
        db_persist=True,
        help_text="0 when a fix is available (those come first), else 1.",
    )
    package_name = models.CharField(max_length=255, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sbom", "package", "advisory"], name="finding_unique_subject"
            )
        ]
        indexes = [
            models.Index(fields=["sbom", "resolved_at"], name="finding_sbom_open"),
            models.Index(fields=["advisory", "resolved_at"], name="finding_advisory_open"),
            # Keyset pages of one scan's findings, worst first: the open ones (the default
            # list), and all of them (`include_resolved`).
            models.Index(
                fields=["sbom", "severity_order", "fix_rank", "package_name", "id"],
                name="finding_sbom_open_worst",
                condition=Q(resolved_at__isnull=True),
            ),
            models.Index(
                fields=["sbom", "severity_order", "fix_rank", "package_name", "id"],
                name="finding_sbom_worst",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.advisory_id} in {self.package_id} of {self.sbom_id}"

    @property
    def is_open(self) -> bool:
        """Whether the finding still stands."""
        return self.resolved_at is None


#: The order of a findings list: worst first (severity), fixable first, by package; unique last.
FINDING_ORDER = ("severity_order", "fix_rank", "package_name", "id")


class Waiver(models.Model):
    """An exception for one advisory (or any of its aliases), reviewed and always expiring.

    Scope: one image version, a base image (all its versions), a service (by name: services
    live in deployments, which images never imports) or a team. `package_name` blank covers
    every package. The approver is a platform admin other than the requester. Expiry takes
    effect by date, with no rescan.
    """

    advisory_ref = models.CharField(max_length=100, help_text="An advisory id or alias.")
    package_name = models.CharField(max_length=255, blank=True)
    scope = models.CharField(max_length=14, choices=WaiverScope.choices)
    image_version = models.ForeignKey(
        "images.ImageVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    base_image = models.ForeignKey(
        "images.BaseImage", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    service_name = models.CharField(max_length=63, blank=True)
    team = models.ForeignKey(
        "portal.Team",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The scope's team (team scope), or the team that owns the scoped service.",
    )
    status = models.CharField(max_length=20, choices=VexStatus.choices)
    justification = models.CharField(max_length=60, choices=VexJustification.choices, blank=True)
    impact_statement = models.TextField(blank=True)
    action_statement = models.TextField(blank=True)
    state = models.CharField(
        max_length=10, choices=WaiverState.choices, default=WaiverState.REQUESTED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_repr = models.CharField(max_length=200, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(scope=WaiverScope.IMAGE_VERSION, image_version__isnull=False)
                    | Q(scope=WaiverScope.BASE_IMAGE, base_image__isnull=False)
                    | (Q(scope=WaiverScope.SERVICE) & ~Q(service_name=""))
                    | Q(scope=WaiverScope.TEAM, team__isnull=False)
                ),
                name="waiver_scope_has_target",
            )
        ]

    def __str__(self) -> str:
        return f"waiver #{self.pk} {self.advisory_ref} ({self.scope}, {self.state})"
