"""Registries, the base-image catalog, image versions and image requests."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy

from ..choices import (
    ImageKind,
    ImageStatus,
    OsFamily,
    RecipeKind,
    RequestEventKind,
    RequestState,
    ScanState,
    VersionState,
)
from ..references import registry_host
from ..registry import RegistryClient

image_name_validator = RegexValidator(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*\Z",
    "Use a repository name: lowercase letters, digits, '.', '_' or '-', '/'-separated "
    "(e.g. runtime/debian).",
)
digest_validator = RegexValidator(
    r"^sha256:[a-f0-9]{64}\Z", "A digest is sha256: followed by 64 lowercase hex characters."
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
        validators=[RegexValidator(r"^[A-Z0-9_]*\Z", "Use upper-case letters, digits and '_'.")],
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
        return registry_host(self.url)

    @property
    def uses_tls(self) -> bool:
        """Whether the registry speaks HTTPS (a plain-HTTP registry has nothing to verify)."""
        return self.url.lower().startswith("https://")

    def credentials(self) -> tuple[str | None, str | None]:
        """(username, password) from the environment, or (None, None)."""
        if not self.credentials_env:
            return None, None
        prefix = f"PORTAL_REGISTRY_{self.credentials_env}_"
        return os.environ.get(prefix + "USERNAME"), os.environ.get(prefix + "PASSWORD")

    def client(self) -> RegistryClient:
        """An OCI client for this registry: its credentials, TLS setting and the configured
        token hosts (the one place every caller gets them from)."""
        username, password = self.credentials()
        return RegistryClient(
            self.url,
            username=username,
            password=password,
            verify=self.tls_verify,
            token_hosts=settings.PORTAL_REGISTRY_TOKEN_HOSTS,
        )


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
        "portal.Team", on_delete=models.PROTECT, related_name="base_images"
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
            raise ValidationError({"replacement": gettext_lazy("An image cannot replace itself.")})
        if self.os_family != OsFamily.NONE and not self.os_version:
            raise ValidationError(
                {"os_version": gettext_lazy("Give the OS version (e.g. 12, 7, 22.03).")}
            )

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
    sbom = models.ForeignKey(
        "images.Sbom",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="image_versions",
        help_text="The scan of this digest (kept apart from the version row).",
    )
    scan_state = models.CharField(
        max_length=12, choices=ScanState.choices, default=ScanState.UNSCANNED, db_index=True
    )
    scan_error = models.TextField(blank=True)
    scanned_at = models.DateTimeField(null=True, blank=True)
    scan_summary = models.JSONField(
        default=dict, blank=True, help_text="Open findings by severity, fixable, waived."
    )
    recipe_sha256 = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="sha256 of the recipe text."
    )
    base_digest = models.CharField(
        max_length=71, blank=True, help_text="Digest of the image the recipe was built FROM."
    )
    build_job = models.ForeignKey(
        "portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # An image's versions newest first (its page, resolve, the catalog's current version);
        # all of them newest first (the image-versions list: it sorted the whole table).
        indexes = [
            models.Index(fields=["base_image", "-created_at", "-id"], name="version_image_newest"),
            models.Index(fields=["-created_at", "-id"], name="version_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.base_image.name}:{self.tag}@{self.digest[:19]}"

    @property
    def pull_ref(self) -> str:
        """The digest-pinned pull reference."""
        return f"{self.registry.host}/{self.base_image.name}@{self.digest}"


tag_validator = RegexValidator(
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z",
    "A tag is 1-128 characters: letters, digits, '_', '.' or '-', not starting with '.' or '-'.",
)


class ImageRequest(models.Model):
    """A user's request for a new base image, or a new version (tag) of one.

    Allowed transitions (each a guarded conditional update in `images.services`):

        draft             -> submitted          (the requester's team submits; policy report)
        changes_requested -> submitted          (resubmitted after an edit)
        submitted         -> changes_requested  (a reviewer asks for changes)
        submitted         -> approved           (a reviewer other than the requester; build job)
        submitted         -> rejected           (a reviewer)
        approved          -> building           (the build job starts)
        approved|building -> failed             (the build job failed or was cancelled)
        building          -> scanning           (built, pushed, candidate version recorded)
        scanning          -> published          (a reviewer or the auto-publish rule publishes)

    rejected, published and failed are final. While a request is open (submitted …
    scanning), no other request for the same name:tag may be opened (a database constraint).
    """

    name = models.CharField(max_length=200, validators=[image_name_validator])
    tag = models.CharField(max_length=128, validators=[tag_validator])
    kind = models.CharField(max_length=10, choices=ImageKind.choices)
    os_family = models.CharField(max_length=20, choices=OsFamily.choices)
    os_version = models.CharField(max_length=40, blank=True)
    toolchain = models.CharField(max_length=100, blank=True)
    recipe_kind = models.CharField(max_length=12, choices=RecipeKind.choices)
    recipe = models.TextField(help_text="A Dockerfile, or a bootstrap spec in YAML/JSON.")
    justification = models.TextField()
    base_image = models.ForeignKey(
        BaseImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    state = models.CharField(
        max_length=20, choices=RequestState.choices, default=RequestState.DRAFT, db_index=True
    )
    policy_verdict = models.CharField(max_length=10, blank=True)
    policy_report = models.JSONField(default=dict, blank=True)
    team = models.ForeignKey(
        "portal.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="image_requests",
    )
    requested_by_token = models.ForeignKey(
        "portal.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by_repr = models.CharField(max_length=200, blank=True)
    build_job = models.ForeignKey(
        "portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    image_version = models.ForeignKey(
        ImageVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    error = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "tag"],
                condition=Q(state__in=sorted(RequestState.open())),
                name="imagerequest_one_open_per_tag",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}:{self.tag} ({self.state})"

    @property
    def reference(self) -> str:
        """`name:tag`."""
        return f"{self.name}:{self.tag}"

    @property
    def is_final(self) -> bool:
        """Whether the request will not change state any more."""
        return self.state in (RequestState.REJECTED, RequestState.PUBLISHED, RequestState.FAILED)


class ImageRequestEvent(models.Model):
    """One entry of a request's timeline: a state change or a comment, by whom and when."""

    request = models.ForeignKey(ImageRequest, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=RequestEventKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_repr = models.CharField(max_length=200)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.kind} by {self.actor_repr}"
