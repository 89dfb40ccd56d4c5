"""Models of the images app: registries, the base-image catalog and image versions."""

from __future__ import annotations

import os
import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from .choices import ImageKind, ImageStatus, OsFamily, VersionState

image_name_validator = RegexValidator(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
    "Use a repository name: lowercase letters, digits, '.', '_' or '-', '/'-separated "
    "(e.g. runtime/debian).",
)
digest_validator = RegexValidator(
    r"^sha256:[a-f0-9]{64}$", "A digest is sha256: followed by 64 lowercase hex characters."
)


class Registry(models.Model):
    """An OCI Distribution registry the portal reads from and pushes to.

    Credentials never live in the database: `credentials_env` names an environment variable
    prefix, e.g. `LOCAL` → `PORTAL_REGISTRY_LOCAL_USERNAME` / `PORTAL_REGISTRY_LOCAL_PASSWORD`.
    """

    name = models.CharField(max_length=63, unique=True)
    url = models.URLField(help_text="Base URL, e.g. https://harbor.example.com")
    tls_verify = models.BooleanField(default=True)
    credentials_env = models.CharField(
        max_length=40,
        blank=True,
        validators=[RegexValidator(r"^[A-Z0-9_]*$", "Use upper-case letters, digits and '_'.")],
    )
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"

    def __str__(self) -> str:
        return self.name

    @property
    def host(self) -> str:
        """host[:port] as used in image references."""
        return re.sub(r"^https?://", "", self.url).rstrip("/")

    def credentials(self) -> tuple[str | None, str | None]:
        """(username, password) from the environment, or (None, None)."""
        if not self.credentials_env:
            return None, None
        prefix = f"PORTAL_REGISTRY_{self.credentials_env}_"
        return os.environ.get(prefix + "USERNAME"), os.environ.get(prefix + "PASSWORD")


class BaseImage(models.Model):
    """A catalog entry: an approved (or deprecated, restricted, blocked) base image.

    `eol_date` is derived from the OS lifecycle table; `status_note` carries derived notes
    such as "static C/C++ only" for scratch.
    """

    name = models.CharField(max_length=200, unique=True, validators=[image_name_validator])
    kind = models.CharField(max_length=10, choices=ImageKind.choices)
    os_family = models.CharField(max_length=20, choices=OsFamily.choices)
    os_version = models.CharField(max_length=40, blank=True)
    toolchain = models.CharField(max_length=100, blank=True)
    owner_team = models.ForeignKey(
        "deployments.Team", on_delete=models.PROTECT, related_name="base_images"
    )
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=ImageStatus.choices, default=ImageStatus.APPROVED, db_index=True
    )
    status_note = models.CharField(max_length=300, blank=True)
    eol_date = models.DateField(null=True, blank=True)
    replacement = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )
    registry = models.ForeignKey(
        Registry, null=True, blank=True, on_delete=models.PROTECT, related_name="base_images"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.replacement_id and self.replacement_id == self.pk:
            raise ValidationError({"replacement": "An image cannot replace itself."})
        if self.os_family != OsFamily.NONE and not self.os_version:
            raise ValidationError({"os_version": "Give the OS version (e.g. 12, 7, 22.03)."})

    @property
    def is_scratch(self) -> bool:
        """The empty image."""
        return self.os_family == OsFamily.NONE


class ImageVersion(models.Model):
    """One immutable build of a BaseImage, identified by its manifest digest.

    Pull it as `registry/repo@sha256:…` (`pull_ref`), never by tag. States: candidate →
    approved → superseded (by a newer approved version); revoked at any time.
    """

    base_image = models.ForeignKey(BaseImage, on_delete=models.CASCADE, related_name="versions")
    tag = models.CharField(max_length=128)
    tags = models.JSONField(default=list, blank=True, help_text="Every tag seen on this digest.")
    digest = models.CharField(max_length=71, unique=True, validators=[digest_validator])
    registry = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="versions")
    recipe = models.TextField(blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    arch = models.CharField(max_length=20, blank=True)
    state = models.CharField(
        max_length=12, choices=VersionState.choices, default=VersionState.CANDIDATE, db_index=True
    )
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    sbom = models.JSONField(null=True, blank=True)
    scan_summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.base_image.name}:{self.tag}@{self.digest[:19]}"

    @property
    def pull_ref(self) -> str:
        """The digest-pinned pull reference."""
        return f"{self.registry.host}/{self.base_image.name}@{self.digest}"
