"""API serializers of the portal package."""

from typing import ClassVar

from rest_framework import serializers

from ..models import Job
from .rows import Row

LOG_TAIL_CHARS = 20_000


class JobSerializer(serializers.ModelSerializer):
    """A job's state, progress, attempts and the tail of its log."""

    log_tail = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="api:job-detail")
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "kind",
            "state",
            "queue",
            "progress",
            "step",
            "attempts",
            "max_attempts",
            "worker",
            "heartbeat_at",
            "error",
            "result",
            "params",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "log_tail",
        ]

    def get_log_tail(self, job: Job) -> str:
        return job.log[-LOG_TAIL_CHARS:]

    def get_created_by(self, job: Job) -> str | None:
        if job.created_by_token is not None:
            return f"token:{job.created_by_token.name}"
        return job.created_by.get_username() if job.created_by is not None else None


class JobListSerializer(JobSerializer):
    """A row of the jobs list: the job without its log (the log is deferred in the list, and
    reading it would cost a query and up to 20,000 characters per row; the job's own URL has
    `log_tail`)."""

    log_tail = None  # type: ignore[assignment]  # DRF: None removes the inherited field

    class Meta(JobSerializer.Meta):
        fields = [f for f in JobSerializer.Meta.fields if f != "log_tail"]

    row_columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "created_by": ("created_by_token__name", "created_by__username"),
    }

    def row_created_by(self, row: Row) -> str | None:
        """`get_created_by` of a row (see `portal.api.rows`)."""
        if row["created_by_token__name"] is not None:
            return f"token:{row['created_by_token__name']}"
        username: str | None = row["created_by__username"]
        return username
