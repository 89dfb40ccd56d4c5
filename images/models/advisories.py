"""Advisories imported as OSV records: revisions, aliases, affected rows and import summaries."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ..choices import AliasKind, ImportSource, Severity


class AdvisoryImport(models.Model):
    """One import run: where it read from and what it did (counts and per-record errors)."""

    source_kind = models.CharField(max_length=10, choices=ImportSource.choices)
    source = models.CharField(max_length=1000, help_text="Path, upload name or URL.")
    job = models.ForeignKey(
        "portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    quarantined = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{record, reason}], capped.")
    changed_keys = models.JSONField(
        default=list, blank=True, help_text="[(ecosystem, name)] whose affected rows changed."
    )
    rematched_packages = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"import #{self.pk} {self.source_kind} {self.source[:60]}"


class Advisory(models.Model):
    """The current revision of one OSV record (`id`), with its severity derived on import."""

    osv_id = models.CharField(max_length=100, unique=True)
    modified = models.DateTimeField()
    published = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    details = models.TextField(blank=True)
    severity = models.CharField(
        max_length=10, choices=Severity.choices, default=Severity.UNKNOWN, db_index=True
    )
    cvss_score = models.DecimalField(max_digits=3, decimal_places=1, null=True, blank=True)
    cvss_vector = models.CharField(max_length=300, blank=True)
    record = models.JSONField(help_text="The OSV record as imported.")
    record_sha256 = models.CharField(max_length=64)
    last_import = models.ForeignKey(
        AdvisoryImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-modified", "osv_id"]
        verbose_name_plural = "advisories"

    def __str__(self) -> str:
        return self.osv_id


class AdvisoryRevision(models.Model):
    """Every (id, modified) the portal has imported: the same record twice adds nothing."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="revisions")
    modified = models.DateTimeField()
    record_sha256 = models.CharField(max_length=64)
    advisory_import = models.ForeignKey(
        AdvisoryImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-modified"]
        constraints = [
            models.UniqueConstraint(fields=["advisory", "modified"], name="revision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.advisory_id}@{self.modified.isoformat()}"


class AdvisoryAlias(models.Model):
    """Another identifier an advisory names: CVE-X finds DSA-/DLA-/DEBIAN-/UBUNTU-/ALSA- records."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=100, db_index=True)
    kind = models.CharField(max_length=10, choices=AliasKind.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["advisory", "alias", "kind"], name="alias_unique")
        ]

    def __str__(self) -> str:
        return f"{self.advisory_id} {self.kind} {self.alias}"


class AffectedPackage(models.Model):
    """One `affected[]` entry of an advisory: the matching index, keyed by (ecosystem, name).

    `ranges` and `versions` are stored as OSV gives them (GIT ranges are stored, never matched).
    A `quarantined` row (e.g. an ecosystem without its release suffix, `Debian` for
    `Debian:12`) is kept for people to see and never matched.
    """

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="affected")
    ecosystem = models.CharField(max_length=80)
    name = models.CharField(max_length=255)
    purl = models.CharField(max_length=1000, blank=True)
    ranges = models.JSONField(default=list, blank=True)
    versions = models.JSONField(default=list, blank=True)
    ecosystem_specific = models.JSONField(default=dict, blank=True)
    severity = models.CharField(
        max_length=10, choices=Severity.choices, blank=True, help_text="affected[].severity."
    )
    quarantined = models.CharField(
        max_length=200, blank=True, help_text="Why this row is never matched (blank: matched)."
    )

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "name"], name="affected_eco_name")]

    def __str__(self) -> str:
        return f"{self.advisory_id} {self.ecosystem}/{self.name}"
