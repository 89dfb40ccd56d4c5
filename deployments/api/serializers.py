"""API serializers of the deployments app (shapes only; writes go through services)."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from images.references import registry_host
from portal.api.rows import Row, row_url
from portal.api.serializers import JobSerializer

from ..choices import DeliveryStrategy, DeploymentMode, Language
from ..models import BinaryVersion, Deployment, Environment, Release, Service


class ServiceSerializer(serializers.ModelSerializer):
    """A service as listed."""

    team = serializers.CharField(source="team.name", read_only=True)
    version_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    deployment_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    last_upload = serializers.DateTimeField(read_only=True, default=None, allow_null=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:service-detail", lookup_field="name")
    binaries_url = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            "id",
            "url",
            "name",
            "team",
            "language",
            "repo_url",
            "default_mode",
            "description",
            "version_count",
            "deployment_count",
            "last_upload",
            "binaries_url",
            "created_at",
        ]

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {"binaries_url": ("name",)}

    def get_binaries_url(self, service: Service) -> str:
        return row_url(self, "api:service-binary-list", "service_name", service.name)

    def row_binaries_url(self, row: Row) -> str:
        return row_url(self, "api:service-binary-list", "service_name", row["name"])


class ServiceCreateSerializer(serializers.Serializer):
    """Input of POST /services/ (team defaults to the token's team)."""

    name = serializers.CharField(max_length=63)
    team = serializers.CharField(max_length=63, required=False)
    language = serializers.ChoiceField(choices=Language.choices, default=Language.OTHER)
    repo_url = serializers.CharField(required=False, allow_blank=True, default="")
    default_mode = serializers.ChoiceField(
        choices=DeploymentMode.choices, default=DeploymentMode.VOLUME
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")


class BinaryVersionSerializer(serializers.ModelSerializer):
    """A binary version with its ELF facts, uploader and where it is deployed."""

    service = serializers.CharField(source="service.name", read_only=True)
    uploaded_by = serializers.CharField(source="uploader", read_only=True)
    download_url = serializers.SerializerMethodField()
    deployed_in = serializers.SerializerMethodField()

    class Meta:
        model = BinaryVersion
        fields = [
            "id",
            "service",
            "version",
            "arch",
            "filename",
            "sha256",
            "size",
            "file_type",
            "linkage",
            "interpreter",
            "needed",
            "min_glibc",
            "libc",
            "machine",
            "elf_class",
            "runpath",
            "version_needs",
            "facts_version",
            "built_in",
            "commit",
            "build_url",
            "artifact_ref",
            "state",
            "scan_state",
            "scan_error",
            "scanned_at",
            "sbom",
            "uploaded_by",
            "created_at",
            "download_url",
            "deployed_in",
        ]

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "uploaded_by": ("uploaded_by_token__name", "uploaded_by__username"),
        "download_url": ("id",),
        "deployed_in": ("id",),
    }

    def get_download_url(self, bv: BinaryVersion) -> str:
        return row_url(self, "api:binary-version-download", "pk", bv.pk)

    def get_deployed_in(self, bv: BinaryVersion) -> list[str]:
        return [d.environment.name for d in bv.deployments.all()]

    def rows_prefetch(self, page: list[Row]) -> None:
        """The page's environments per binary, by name (as `binary_version_list` prefetches)."""
        self._deployed_in: dict[int, list[str]] = {row.pk: [] for row in page}
        deployed = (
            Deployment.objects.filter(binary_version_id__in=list(self._deployed_in))
            .order_by("environment__name")
            .values_list("binary_version_id", "environment__name")
        )
        for binary_id, environment in deployed:
            self._deployed_in[binary_id].append(environment)

    def row_uploaded_by(self, row: Row) -> str:
        """`BinaryVersion.uploader` of a row."""
        if row["uploaded_by_token__name"] is not None:
            return f"token:{row['uploaded_by_token__name']}"
        return row["uploaded_by__username"] or "—"

    def row_download_url(self, row: Row) -> str:
        return row_url(self, "api:binary-version-download", "pk", row.pk)

    def row_deployed_in(self, row: Row) -> list[str]:
        return self._deployed_in[row.pk]


class BinaryUploadSerializer(serializers.Serializer):
    """The multipart form of an upload (documentation; the view reads the streamed parts)."""

    file = serializers.FileField()
    version = serializers.CharField()
    sha256 = serializers.CharField()
    arch = serializers.CharField()
    commit = serializers.CharField(required=False)
    build_url = serializers.CharField(required=False)
    artifact_ref = serializers.CharField(required=False)
    built_in = serializers.IntegerField(
        required=False, help_text="The id of the build image version it was compiled in."
    )


class ArtifactJobSerializer(serializers.Serializer):
    """Answer of POST /binaries/{id}/artifact/: the push job (poll it at Location)."""

    job = JobSerializer()


class EnvironmentSerializer(serializers.ModelSerializer):
    """An environment; `hostpath_sync_url` gives the DaemonSet for hostPath delivery."""

    deployment_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    hostpath_sync_url = serializers.SerializerMethodField()
    delivery_strategy = serializers.ChoiceField(
        choices=DeliveryStrategy.choices, default=DeliveryStrategy.HOSTPATH
    )
    hostpath_root = serializers.CharField(default="/data/bin")
    fetch_token_secret = serializers.CharField(default="portal-fetch-token")
    description = serializers.CharField(default="", allow_blank=True)

    class Meta:
        model = Environment
        fields = [
            "id",
            "name",
            "namespace",
            "k8s_version",
            "delivery_strategy",
            "hostpath_root",
            "fetch_token_secret",
            "description",
            "deployment_count",
            "hostpath_sync_url",
            "created_at",
        ]
        extra_kwargs: ClassVar[dict[str, dict[str, Any]]] = {"name": {"validators": []}}

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {"hostpath_sync_url": ("name",)}

    def get_hostpath_sync_url(self, env: Environment) -> str:
        return row_url(self, "api:environment-hostpath-sync", "name", env.name)

    def row_hostpath_sync_url(self, row: Row) -> str:
        return row_url(self, "api:environment-hostpath-sync", "name", row["name"])


class DeploymentSerializer(serializers.ModelSerializer):
    """A service × environment with the tuple its next release is rendered from."""

    service = serializers.SlugRelatedField(slug_field="name", queryset=Service.objects.all())
    environment = serializers.SlugRelatedField(
        slug_field="name", queryset=Environment.objects.all()
    )
    mode = serializers.ChoiceField(choices=DeploymentMode.choices, required=False, default="")
    binary_version_label = serializers.CharField(
        source="binary_version.version", read_only=True, default=None, allow_null=True
    )
    runtime_image = serializers.CharField(source="runtime_version.pull_ref", read_only=True)
    latest_release = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    command = serializers.JSONField(required=False, default=list)  # type: ignore[arg-type]  # DRF calls a callable default; the stubs want a Mapping
    args = serializers.JSONField(required=False, default=None)
    env = serializers.JSONField(required=False, default=list)  # type: ignore[arg-type]  # DRF calls a callable default; the stubs want a Mapping
    ports = serializers.JSONField(required=False, default=list)  # type: ignore[arg-type]  # DRF calls a callable default; the stubs want a Mapping
    resources = serializers.JSONField(required=False, default=dict)
    replicas = serializers.JSONField(required=False, default=1)  # type: ignore[arg-type]  # any JSON value is a valid default; the stubs want a Mapping
    app_image = serializers.CharField(required=False, allow_blank=True, default="")

    class Meta:
        model = Deployment
        fields = [
            "id",
            "service",
            "environment",
            "mode",
            "runtime_version",
            "runtime_image",
            "binary_version",
            "binary_version_label",
            "app_image",
            "app_image_base_digest",
            "command",
            "args",
            "env",
            "ports",
            "resources",
            "replicas",
            "latest_release",
            "created_at",
            "updated_at",
        ]
        read_only_fields: ClassVar[list[str]] = ["app_image_base_digest"]
        validators: list[Any] = []

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "runtime_image": (
            "runtime_version__registry__url",
            "runtime_version__base_image__name",
            "runtime_version__digest",
        ),
    }

    def row_runtime_image(self, row: Row) -> str:
        """`ImageVersion.pull_ref` of the row's runtime version."""
        return (
            f"{registry_host(row['runtime_version__registry__url'])}/"
            f"{row['runtime_version__base_image__name']}@{row['runtime_version__digest']}"
        )


class ReleaseSerializer(serializers.ModelSerializer):
    """A release as listed (without the manifest text)."""

    service = serializers.CharField(source="deployment.service.name", read_only=True)
    environment = serializers.CharField(source="deployment.environment.name", read_only=True)
    binary_version_label = serializers.CharField(source="binary_version.version", read_only=True)
    created_by = serializers.CharField(source="created_by_repr", read_only=True)
    rollback_of = serializers.IntegerField(
        source="rollback_of.number", read_only=True, default=None, allow_null=True
    )
    manifest_url = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "id",
            "deployment",
            "service",
            "environment",
            "number",
            "strategy",
            "binary_version",
            "binary_version_label",
            "runtime_version",
            "binary_sha256",
            "base_digest",
            "manifest_sha256",
            "k8s_version",
            "validation",
            "created_by",
            "rollback_of",
            "created_at",
            "manifest_url",
            "status",
            "status_note",
            "status_at",
        ]

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "manifest_url": ("id",),
        "created_by": ("created_by_token__name", "created_by__username"),
    }

    def get_manifest_url(self, release: Release) -> str:
        return row_url(self, "api:release-manifest", "pk", release.pk)

    def row_manifest_url(self, row: Row) -> str:
        return row_url(self, "api:release-manifest", "pk", row.pk)

    def row_created_by(self, row: Row) -> str:
        """`Release.created_by_repr` of a row."""
        if row["created_by_token__name"] is not None:
            return f"token:{row['created_by_token__name']}"
        return row["created_by__username"] or "system"


class ReleaseDetailSerializer(ReleaseSerializer):
    """A release with its manifest (and Dockerfile in image mode)."""

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "manifest_yaml", "dockerfile"]


class ReleaseStatusSerializer(serializers.Serializer):
    """Input of POST /releases/{id}/status/: what CD saw."""

    status = serializers.ChoiceField(choices=["deployed", "healthy", "failed"])
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class ReleaseCreateSerializer(serializers.Serializer):
    """Input of POST /deployments/{id}/releases/: change the binary and/or runtime version."""

    binary_version = serializers.IntegerField(required=False, allow_null=True)
    runtime_version = serializers.IntegerField(required=False, allow_null=True)


class FetchTokenSerializer(serializers.Serializer):
    """The answer of POST /environments/{name}/fetch-token/ (the secret is shown once)."""

    token = serializers.SerializerMethodField()
    secret = serializers.CharField()
    secret_name = serializers.CharField()
    namespace = serializers.CharField()
    kubectl_command = serializers.CharField()
    revoked_tokens = serializers.SerializerMethodField()
    revoked_notice = serializers.CharField()

    def get_token(self, fetch: Any) -> dict[str, Any]:
        token = fetch.token
        return {
            "id": token.pk,
            "team": token.team.name,
            "name": token.name,
            "scopes": token.scopes,
        }

    def get_revoked_tokens(self, fetch: Any) -> list[dict[str, Any]]:
        """The environment's previous fetch tokens, revoked by this rotation."""
        return [
            {"id": t.pk, "team": t.team.name, "name": t.name, "prefix": t.prefix}
            for t in fetch.revoked
        ]
