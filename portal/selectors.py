"""Reads of the portal package."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .actors import Actor
from .models import AuditEntry, Job


def job_list_for_actor(actor: Actor) -> QuerySet[Job]:
    """Jobs the actor may see: all for platform admins, else its own and its teams'."""
    jobs = Job.objects.select_related("created_by", "created_by_token", "team").defer("log")
    if actor.is_platform_admin:
        return jobs
    if actor.token is not None:
        return jobs.filter(Q(created_by_token=actor.token) | Q(team_id=actor.token.team_id))
    return jobs.filter(Q(created_by=actor.user) | Q(team_id__in=actor.team_ids))


def audit_list() -> QuerySet[AuditEntry]:
    """The audit log, newest first."""
    return AuditEntry.objects.select_related("actor_user", "actor_token", "object_type")
