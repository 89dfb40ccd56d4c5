"""API serializers of the images app (read-only shapes; writes go through services)."""

from typing import ClassVar

from rest_framework import serializers

from portal.api.rows import Row

from ..choices import ImageKind, OsFamily, RecipeKind
from ..models import BaseImage, ImageRequest, ImageVersion
from ..references import registry_host


class ImageVersionSerializer(serializers.ModelSerializer):
    """One immutable build, with its digest-pinned pull reference."""

    pull_ref = serializers.CharField(read_only=True)
    registry = serializers.CharField(source="registry.host", read_only=True)

    class Meta:
        model = ImageVersion
        fields = [
            "id",
            "tag",
            "tags",
            "digest",
            "pull_ref",
            "registry",
            "size",
            "arch",
            "state",
            "superseded_by",
            "scan_state",
            "scan_error",
            "scanned_at",
            "sbom",
            "scan_summary",
            "created_at",
        ]


class BaseImageSerializer(serializers.ModelSerializer):
    """A catalog entry as listed."""

    owner_team = serializers.CharField(source="owner_team.name", read_only=True)
    replacement = serializers.CharField(
        source="replacement.name", default=None, read_only=True, allow_null=True
    )
    registry = serializers.CharField(
        source="registry.host", default=None, allow_null=True, read_only=True
    )
    version_count = serializers.IntegerField(read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:base-image-detail")

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {"registry": ("registry__url",)}

    def row_registry(self, row: Row) -> str | None:
        """`Registry.host` of a row's registry (None: the entry has none)."""
        return registry_host(row["registry__url"]) if row["registry__url"] is not None else None

    class Meta:
        model = BaseImage
        fields = [
            "id",
            "url",
            "name",
            "kind",
            "os_family",
            "os_version",
            "toolchain",
            "status",
            "status_note",
            "eol_date",
            "replacement",
            "owner_team",
            "registry",
            "description",
            "version_count",
            "updated_at",
        ]


class BaseImageDetailSerializer(BaseImageSerializer):
    """A catalog entry with its versions."""

    versions = ImageVersionSerializer(many=True, read_only=True)
    version_count = None  # type: ignore[assignment]  # DRF drops a parent's field set to None

    class Meta(BaseImageSerializer.Meta):
        fields = [f for f in BaseImageSerializer.Meta.fields if f != "version_count"] + ["versions"]


class ResolveSerializer(serializers.Serializer):
    """The answer of /base-images/resolve/."""

    ref = serializers.CharField()
    approved = serializers.BooleanField()
    image = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    tag = serializers.CharField(allow_null=True)
    digest = serializers.CharField(allow_null=True)
    pinned_ref = serializers.CharField(allow_null=True)
    version_state = serializers.CharField(allow_null=True)
    eol_date = serializers.DateField(allow_null=True)
    replacement = serializers.DictField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class DockerfileCheckRequestSerializer(serializers.Serializer):
    """The JSON body of POST /dockerfile-checks/ (documentation; the view validates by hand)."""

    dockerfile = serializers.CharField(help_text="The Dockerfile text (at most 256 KiB UTF-8).")
    service = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The service it belongs to (its language "
        "and exceptions apply); 400 when no such service exists.",
    )
    purpose = serializers.ChoiceField(
        choices=["service", "runtime-recipe", "build-recipe"], required=False, default="service"
    )


class DockerfileFindingSerializer(serializers.Serializer):
    """One finding: rule id (BIPnnn, DLnnnn, SCnnnn), severity, line and the fix."""

    rule = serializers.CharField()
    severity = serializers.ChoiceField(choices=["fail", "warn", "info"])
    line = serializers.IntegerField()
    message = serializers.CharField()


class DockerfileStageSerializer(serializers.Serializer):
    """One build stage with the catalog image it resolved to and its pinned reference."""

    index = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    base = serializers.CharField(allow_blank=True)
    line = serializers.IntegerField()
    platform = serializers.CharField(allow_blank=True)
    parent_stage = serializers.IntegerField(allow_null=True)
    resolved_image = serializers.CharField(allow_null=True)
    kind = serializers.CharField(allow_null=True)
    pinned_ref = serializers.CharField(allow_null=True)


class DockerfileCheckResultSerializer(serializers.Serializer):
    """The answer of POST /dockerfile-checks/ (200 for every verdict)."""

    verdict = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    findings = DockerfileFindingSerializer(many=True)
    stages = DockerfileStageSerializer(many=True)


# --- image requests and versions (the request → build → publish workflow) ---------------------


class ImageVersionDetailSerializer(ImageVersionSerializer):
    """One version with what built it: recipe, its sha256, the base digest and the build job."""

    base_image = serializers.CharField(source="base_image.name", read_only=True)

    class Meta(ImageVersionSerializer.Meta):
        fields = [
            *ImageVersionSerializer.Meta.fields,
            "base_image",
            "recipe",
            "recipe_sha256",
            "base_digest",
            "build_job",
            "updated_at",
        ]

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "pull_ref": ("registry__url", "base_image__name", "digest"),
        "registry": ("registry__url",),
    }

    def row_pull_ref(self, row: Row) -> str:
        """`ImageVersion.pull_ref` of a row."""
        return f"{registry_host(row['registry__url'])}/{row['base_image__name']}@{row['digest']}"

    def row_registry(self, row: Row) -> str:
        """`Registry.host` of a row's registry."""
        return registry_host(row["registry__url"])


class ImageRequestEventSerializer(serializers.Serializer):
    """One timeline entry of a request."""

    kind = serializers.CharField()
    actor = serializers.CharField(source="actor_repr")
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class ImageRequestSerializer(serializers.ModelSerializer):
    """A base-image request with its policy report, build job, result and timeline."""

    url = serializers.HyperlinkedIdentityField(view_name="api:image-request-detail")
    team = serializers.CharField(source="team.name", default=None, allow_null=True, read_only=True)
    requested_by = serializers.SerializerMethodField()
    image_version = ImageVersionSerializer(read_only=True)
    events = ImageRequestEventSerializer(many=True, read_only=True)
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = ImageRequest
        fields = [
            "id",
            "url",
            "name",
            "tag",
            "kind",
            "os_family",
            "os_version",
            "toolchain",
            "recipe_kind",
            "recipe",
            "justification",
            "state",
            "policy_verdict",
            "policy_report",
            "team",
            "requested_by",
            "reviewed_by_repr",
            "build_job",
            "image_version",
            "error",
            "allowed_actions",
            "events",
            "submitted_at",
            "decided_at",
            "created_at",
            "updated_at",
        ]

    def get_requested_by(self, obj: ImageRequest) -> str | None:
        if obj.requested_by_token is not None:
            return f"token:{obj.requested_by_token.name}"
        return obj.requested_by.get_username() if obj.requested_by is not None else None

    def get_allowed_actions(self, obj: ImageRequest) -> list[str]:
        from portal.actors import Actor

        from ..selectors import image_request_allowed_actions

        request = self.context.get("request")
        if request is None:
            return []
        return image_request_allowed_actions(obj, Actor.from_request(request))


class ImageRequestCreateSerializer(serializers.Serializer):
    """The body of POST /image-requests/ (`submit: true` submits it at once)."""

    name = serializers.CharField(max_length=200)
    tag = serializers.CharField(max_length=128)
    kind = serializers.ChoiceField(choices=ImageKind.choices)
    os_family = serializers.ChoiceField(choices=OsFamily.choices)
    os_version = serializers.CharField(max_length=40, required=False, allow_blank=True)
    toolchain = serializers.CharField(max_length=100, required=False, allow_blank=True)
    recipe_kind = serializers.ChoiceField(choices=RecipeKind.choices)
    recipe = serializers.CharField(trim_whitespace=False, max_length=256 * 1024)
    justification = serializers.CharField(max_length=10_000)
    submit = serializers.BooleanField(required=False, default=False)


class ImageRequestUpdateSerializer(serializers.Serializer):
    """The body of PATCH /image-requests/{id}/ (drafts and requests sent back for changes)."""

    tag = serializers.CharField(max_length=128, required=False)
    os_version = serializers.CharField(max_length=40, required=False, allow_blank=True)
    toolchain = serializers.CharField(max_length=100, required=False, allow_blank=True)
    recipe_kind = serializers.ChoiceField(choices=RecipeKind.choices, required=False)
    recipe = serializers.CharField(trim_whitespace=False, max_length=256 * 1024, required=False)
    justification = serializers.CharField(max_length=10_000, required=False)


class ImageRequestTextSerializer(serializers.Serializer):
    """A comment, a reason for rejection, or what has to change."""

    text = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    comment = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    reason = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
