"""Models of the portal package: teams and memberships, API tokens, the audit log and jobs."""

import json

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from .choices import JobState, Role, Scope, TokenKind
from .validators import dns_label_validator


class Team(models.Model):
    """A group of people who own services and base images.

    A platform team (`is_platform`) may hold the platform-admin role and issue tokens with the
    `images:review` scope; service teams cannot.
    """

    name = models.CharField(max_length=63, unique=True, validators=[dns_label_validator])
    display_name = models.CharField(max_length=200, blank=True)
    is_platform = models.BooleanField(default=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"


class ApiToken(models.Model):
    """A scoped API token of one team. Only the SHA-256 of the secret is stored.

    The secret is `bip_<prefix>_<random>`; `prefix` is stored in clear to find the row and to
    show which token was used, `secret_hash` is compared in constant time.

    An `api` token acts for its creator (`created_by`): never above the creator's current role
    in the token's team, never beyond its scopes; without a creator it acts for nobody. A
    `fetch` token is an environment's node credential: `binaries:read`, accepted only by the
    binary download.
    """

    name = models.CharField(max_length=100)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tokens")
    kind = models.CharField(max_length=8, choices=TokenKind.choices, default=TokenKind.API)
    scopes = models.JSONField(default=list)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="apitoken_unique_team_name")
        ]

    def __str__(self) -> str:
        return f"{self.team}/{self.name}"

    def has_scope(self, scope: str) -> bool:
        """Whether the token carries `scope`."""
        return scope in self.scopes


class AuditEntry(models.Model):
    """One create, update or state change: who (user or token), what, before and after."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        # The keyset order of the audit page (portal.keyset).
        indexes = [models.Index(fields=["-created_at", "-id"], name="audit_newest")]

    def __str__(self) -> str:
        return f"{self.actor_repr} {self.action} {self.object_repr}"


class Job(models.Model):
    """A unit of background work; the row is the record, the Celery message only a wake-up.

    Allowed transitions (each a guarded conditional update in `portal.jobs.services`):

        queued  -> running    (a worker claims it; attempts += 1)
        queued  -> cancelled  (a user cancels before it starts)
        queued  -> failed     (attempts exhausted when requeued by the reaper)
        running -> succeeded  (the handler returned)
        running -> failed     (the handler raised, timed out, or the reaper gave up)
        running -> queued     (the reaper found a stale heartbeat and attempts remain)
        running -> cancelled  (a user cancelled; the handler stops at its next check)

    succeeded, failed and cancelled are final.

    While the handler runs an external command, `process_group` names it (node, host, pgid,
    leader start time). The command lives in its own session, so it outlives a worker that is
    killed; the reaper ends that group before it requeues or fails the job, and leaves the job
    running while it cannot (the group runs on another host), so that no second attempt starts
    while the first attempt's tool still runs.
    """

    kind = models.CharField(max_length=64, db_index=True)
    state = models.CharField(
        max_length=16, choices=JobState.choices, default=JobState.QUEUED, db_index=True
    )
    queue = models.CharField(max_length=32, default="default")
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    timeout_seconds = models.PositiveIntegerField(default=3600)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the Celery message for the job's current queued spell was last sent; "
        "the reaper sends it again when it is older than JOB_RESEND_QUEUED_AFTER_SECONDS.",
    )
    worker = models.CharField(max_length=200, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    step = models.CharField(max_length=200, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    process_group = models.JSONField(
        default=dict,
        blank=True,
        help_text="The external command running for the job now (portal.commands.ProcessGroup).",
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_id = models.CharField(max_length=64, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    result_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    result_id = models.CharField(max_length=64, blank=True)
    created_object = GenericForeignKey("result_type", "result_id")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The keyset order of the jobs list, for all jobs and for a team's (portal.keyset).
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="job_newest"),
            models.Index(fields=["team", "-created_at", "-id"], name="job_team_newest"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(state__in=["queued", "running"]),
                name="job_unique_live_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"

    @property
    def result_json(self) -> str:
        """The result as indented JSON, for people."""
        return json.dumps(self.result, indent=2, sort_keys=True, default=str)

    @property
    def is_final(self) -> bool:
        """Whether the job can no longer change state."""
        return self.state in JobState.final()


__all__ = ["ApiToken", "AuditEntry", "Job", "Scope", "TokenKind"]
