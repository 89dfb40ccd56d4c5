"""API serializers of the images app (read-only shapes; writes go through services)."""

from rest_framework import serializers

from ..models import BaseImage, ImageVersion


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
            "scan_summary",
            "created_at",
        ]


class BaseImageSerializer(serializers.ModelSerializer):
    """A catalog entry as listed."""

    owner_team = serializers.CharField(source="owner_team.name", read_only=True)
    replacement = serializers.CharField(source="replacement.name", default=None, read_only=True)
    registry = serializers.CharField(source="registry.host", default=None, read_only=True)
    version_count = serializers.IntegerField(read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:base-image-detail")

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
    version_count = None  # type: ignore[assignment]

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
