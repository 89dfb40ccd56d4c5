"""Source builds: a binary compiled from an uploaded source archive in an approved build image."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ..choices import SourceBuildState


class SourceBuild(models.Model):
    """One compile: the pinned build image, the source archive, the command and its output.

    `cache_key` (sha256 of build digest, source sha256, command, output path, arch, version)
    makes the same inputs the same build: a second request returns the first. `provenance` is
    the SLSA v1 provenance statement of the BinaryVersion it produced.
    """

    service = models.ForeignKey(
        "deployments.Service", on_delete=models.PROTECT, related_name="source_builds"
    )
    build_version = models.ForeignKey(
        "images.ImageVersion", on_delete=models.PROTECT, related_name="source_builds"
    )
    version = models.CharField(max_length=128, help_text="The binary version to register.")
    arch = models.CharField(max_length=20)
    source_name = models.CharField(max_length=255)
    source_sha256 = models.CharField(max_length=64)
    source_size = models.BigIntegerField()
    source_file = models.CharField(max_length=300, help_text="Storage name of the archive.")
    command = models.JSONField(help_text="argv run in the build image (no shell unless given).")
    output_path = models.CharField(max_length=300, help_text="Path of the output under /out.")
    cache_key = models.CharField(max_length=64, unique=True)
    state = models.CharField(
        max_length=10, choices=SourceBuildState.choices, default=SourceBuildState.QUEUED
    )
    job = models.ForeignKey(
        "portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    binary_version = models.ForeignKey(
        "deployments.BinaryVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="source_builds",
    )
    provenance = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"build #{self.pk} {self.service_id} {self.version} ({self.state})"
