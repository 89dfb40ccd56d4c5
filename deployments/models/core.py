"""Services, binary versions, environments, deployments and releases."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext

from images.choices import ScanState
from images.texts import message_render
from portal.validators import dns_label_validator

from ..choices import (
    BinaryState,
    DeliveryStrategy,
    DeploymentMode,
    FileType,
    Language,
    Linkage,
    ReleaseStatus,
)
from ..manifests import hostpath_root_errors

DEFAULT_ARGS = ["-m", "release"]

version_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z",
    "Use 1-128 letters, digits and . _ + - for a version, starting with a letter or digit.",
)
sha256_validator = RegexValidator(r"^[0-9a-f]{64}\Z", "A sha256 is 64 lowercase hex digits.")
k8s_version_validator = RegexValidator(
    r"^v?\d+\.\d+(?:\.\d+)?\Z", "Give a Kubernetes version such as 1.33 or v1.35.2."
)
secret_name_validator = RegexValidator(
    r"^(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z",
    "Use a Kubernetes Secret name: lowercase letters, digits, '-' and '.', at most 253 "
    "characters, starting and ending with a letter or digit.",
)
ABS_PATH_PATTERN = r"^/[A-Za-z0-9._/-]*\Z"
abs_path_validator = RegexValidator(
    ABS_PATH_PATTERN, "Give an absolute path of letters, digits and . _ / -."
)


def actor_label(token_name: str | None, username: str | None, *, nobody: str) -> str:
    """Who did it, as the tables show it: `token:<name>` for a token, else the username,
    else `nobody`. For models (`BinaryVersion.uploader`, `Release.created_by_repr`) and for
    the `values()` rows the pages write (`portal.rowtext`) alike."""
    if token_name is not None:
        return f"token:{token_name}"
    return username or nobody


def _default_args() -> list[str]:
    return list(DEFAULT_ARGS)


class Service(models.Model):
    """An application a team deploys; its name is a DNS-1123 label used in every manifest."""

    name = models.CharField(max_length=63, unique=True, validators=[dns_label_validator])
    team = models.ForeignKey("portal.Team", on_delete=models.PROTECT, related_name="services")
    language = models.CharField(max_length=10, choices=Language.choices, default=Language.OTHER)
    repo_url = models.URLField(blank=True)
    default_mode = models.CharField(
        max_length=10, choices=DeploymentMode.choices, default=DeploymentMode.VOLUME
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PolicyException(models.Model):
    """A waiver of one Dockerfile policy rule for one service, with a reason and an expiry.

    `subject` names what is waived: a rule id (`BIP004`, `DL3008`), a catalog image name
    (`runtime/alpine`) or an OS family (`alpine`). Only platform admins grant them.
    """

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="policy_exceptions")
    subject = models.CharField(max_length=100)
    justification = models.TextField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service", "subject"]

    def __str__(self) -> str:
        return f"{self.service} may use {self.subject} until {self.expires_at:%Y-%m-%d}"


class BinaryVersion(models.Model):
    """One uploaded build of a service for one architecture, stored content-addressed.

    `file` is the storage name (`binaries/sha256/<aa>/<sha256>`); several rows may share
    one stored file. States: active → yanked (refused for new releases, kept for existing
    ones); active|yanked → purged (retention deleted the file; the row stays for history).
    """

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="binary_versions")
    version = models.CharField(max_length=128, validators=[version_validator])
    arch = models.CharField(max_length=20)
    filename = models.CharField(max_length=255)
    file = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64, validators=[sha256_validator], db_index=True)
    size = models.BigIntegerField()
    file_type = models.CharField(max_length=10, choices=FileType.choices)
    linkage = models.CharField(max_length=10, choices=Linkage.choices, blank=True)
    interpreter = models.CharField(max_length=255, blank=True)
    needed = models.JSONField(default=list, blank=True)
    min_glibc = models.CharField(max_length=20, blank=True)
    libc = models.CharField(max_length=10, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    build_url = models.URLField(blank=True, max_length=500)
    artifact_ref = models.CharField(
        max_length=300, blank=True, help_text="Digest-pinned OCI artifact (image volumes)."
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    uploaded_by_token = models.ForeignKey(
        "portal.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(
        max_length=10, choices=BinaryState.choices, default=BinaryState.ACTIVE, db_index=True
    )
    # ABI facts beyond the upload's first read (issue 10): filled at upload and by the backfill
    # job for versions uploaded before (`facts_version` says which reader produced them).
    machine = models.CharField(max_length=20, blank=True, help_text="ELF e_machine, e.g. x86_64.")
    elf_class = models.CharField(max_length=8, blank=True, help_text="ELF32 or ELF64.")
    runpath = models.JSONField(default=list, blank=True, help_text="DT_RUNPATH/DT_RPATH entries.")
    version_needs = models.JSONField(
        default=list,
        blank=True,
        help_text="[library, version] pairs from .gnu.version_r, e.g. [libc.so.6, GLIBC_2.34].",
    )
    facts_version = models.PositiveSmallIntegerField(default=0)
    built_in = models.ForeignKey(
        "images.ImageVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="built_binaries",
        help_text="The build image version it was compiled in, when known.",
    )
    sbom = models.ForeignKey(
        "images.Sbom",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="binary_versions",
        help_text="The scan of this file (sha256:<sha256>): Go and Rust module lists.",
    )
    scan_state = models.CharField(
        max_length=12, choices=ScanState.choices, default=ScanState.UNSCANNED, db_index=True
    )
    scan_error = models.TextField(blank=True)
    scanned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "version", "arch"], name="binary_version_unique"
            )
        ]
        # The keyset order of a service's versions and of all versions (portal.keyset).
        indexes = [
            models.Index(fields=["service", "-created_at", "-id"], name="binary_service_newest"),
            models.Index(fields=["-created_at", "-id"], name="binary_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.service.name} {self.version} ({self.arch})"

    @property
    def short_sha256(self) -> str:
        """The first 12 hex digits, for tables."""
        return self.sha256[:12]

    @property
    def uploader(self) -> str:
        """Who uploaded it: a username or token:<team>/<name>."""
        token, user = self.uploaded_by_token, self.uploaded_by
        return actor_label(
            token.name if token is not None else None,
            user.get_username() if user is not None else None,
            nobody="—",
        )


class Environment(models.Model):
    """A target cluster/namespace (dev, staging, prod …) and how volume mode delivers binaries.

    `fetch_token_secret` names the Secret (key ``token``) in `namespace` that the hostPath
    DaemonSet and initFetch containers read their portal download token from; the platform
    admin creates it (`environment_fetch_token_create` gives the command), manifests only
    reference it.
    """

    name = models.CharField(max_length=50, unique=True, validators=[dns_label_validator])
    namespace = models.CharField(max_length=63, validators=[dns_label_validator])
    k8s_version = models.CharField(max_length=20, validators=[k8s_version_validator])
    delivery_strategy = models.CharField(
        max_length=20, choices=DeliveryStrategy.choices, default=DeliveryStrategy.HOSTPATH
    )
    hostpath_root = models.CharField(
        max_length=200, default="/data/bin", validators=[abs_path_validator]
    )
    fetch_token_secret = models.CharField(
        max_length=253,
        default="portal-fetch-token",
        validators=[secret_name_validator],
        help_text="Secret (key 'token') holding the portal token nodes download binaries with.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse a `hostpath_root` the renderers would refuse: not normalised, `/`, a shared
        parent such as `/var`, or a system directory or under one (M5: the sync DaemonSet
        replaces directories in it as root on every node).

        Checked here rather than by a field validator so the rules live in one place
        (`manifests.hostpath_root_errors`) and no migration is needed; a value the field's
        own regex refuses is left to that message.
        """
        super().clean()
        if re.match(ABS_PATH_PATTERN, self.hostpath_root or ""):
            errors = hostpath_root_errors(self.hostpath_root)
            if errors:
                raise ValidationError(
                    {"hostpath_root": [message_render(e, gettext) for e in errors]}
                )


class Deployment(models.Model):
    """A service in an environment: what the next release is rendered from.

    `env` is a list of {"name", "value"} objects (order kept); `resources` holds
    cpu_request, memory_request, cpu_limit, memory_limit (Kubernetes quantities).
    """

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="deployments"
    )
    mode = models.CharField(
        max_length=10, choices=DeploymentMode.choices, default=DeploymentMode.VOLUME
    )
    runtime_version = models.ForeignKey(
        "images.ImageVersion", on_delete=models.PROTECT, related_name="deployments"
    )
    binary_version = models.ForeignKey(
        BinaryVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="deployments"
    )
    app_image = models.CharField(
        max_length=300, blank=True, help_text="Digest-pinned app image (image mode)."
    )
    app_image_base_digest = models.CharField(
        max_length=71,
        blank=True,
        db_index=True,
        help_text="The digest the app image is built on: the portal's own build, or the "
        "image's org.opencontainers.image.base.digest annotation read from the registry.",
    )
    command = models.JSONField(default=list, blank=True)
    args = models.JSONField(default=_default_args, blank=True)
    env = models.JSONField(default=list, blank=True)
    ports = models.JSONField(default=list, blank=True)
    resources = models.JSONField(default=dict, blank=True)
    replicas = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service__name", "environment__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment"], name="deployment_unique_service_environment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.service.name} in {self.environment.name}"


class Release(models.Model):
    """An immutable, numbered snapshot of a Deployment and the manifest rendered from it.

    Its snapshot is never updated after it is created (only CD's `status` report is); a
    rollback is a new release copying an older tuple (`rollback_of`). The newest release of a
    deployment is its live one.
    """

    deployment = models.ForeignKey(Deployment, on_delete=models.PROTECT, related_name="releases")
    number = models.PositiveIntegerField()
    strategy = models.CharField(max_length=20)
    binary_version = models.ForeignKey(
        BinaryVersion, on_delete=models.PROTECT, related_name="releases"
    )
    runtime_version = models.ForeignKey(
        "images.ImageVersion", on_delete=models.PROTECT, related_name="releases"
    )
    binary_sha256 = models.CharField(max_length=64)
    base_digest = models.CharField(max_length=71)
    manifest_yaml = models.TextField(blank=True)
    dockerfile = models.TextField(blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    k8s_version = models.CharField(max_length=20)
    validation = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by_token = models.ForeignKey(
        "portal.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # What CD reported (the only fields that change after creation; the snapshot never does).
    status = models.CharField(
        max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.NONE, blank=True
    )
    status_note = models.CharField(max_length=500, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "number"], name="release_unique_deployment_number"
            )
        ]
        # A day's releases (the dashboard's daily counts: today live, each new day's fill).
        indexes = [models.Index(fields=["created_at"], name="release_created_at")]

    def __str__(self) -> str:
        return f"{self.deployment} #{self.number}"

    @property
    def created_by_repr(self) -> str:
        """Who created it."""
        token, user = self.created_by_token, self.created_by
        return actor_label(
            token.name if token is not None else None,
            user.get_username() if user is not None else None,
            nobody="system",
        )
