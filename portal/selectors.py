"""Reads of the portal package."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .actors import Actor
from .choices import ROLE_RANK, Role, role_at_least
from .models import AuditEntry, Job, Membership, Team

# A token that cancels a job must be able to write something; a read-only token only reads.
_WRITE_SCOPES = ("images:write", "binaries:write", "deployments:write")


def job_list_for_actor(actor: Actor) -> QuerySet[Job]:
    """Jobs the actor may see: all for platform admins, else its teams' (and its own).

    A token sees its own team's jobs and the ones it started; a token that acts for nobody
    (its creator left the team) sees none.
    """
    jobs = Job.objects.select_related("created_by", "created_by_token", "team").defer("log")
    if actor.is_platform_admin:
        return jobs
    if actor.token is not None:
        if not actor.team_ids:
            return jobs.none()
        return jobs.filter(Q(created_by_token=actor.token) | Q(team_id__in=actor.team_ids))
    return jobs.filter(Q(created_by=actor.user) | Q(team_id__in=actor.team_ids))


def job_cancel_refusal(*, job: Job, actor: Actor) -> str:
    """Why `actor` may not cancel `job` (empty when it may).

    Cancelling stops a team's work, so it needs what starting that work needs: a platform
    admin, or a developer (or above) of the job's team; a token also needs a write scope.
    A viewer, a read-only token or a fetch token never cancels.
    """
    if actor.token is not None and not any(actor.token.has_scope(s) for s in _WRITE_SCOPES):
        return (
            "Cancelling a job needs a token with a write scope "
            f"({', '.join(_WRITE_SCOPES)}); this one only reads."
        )
    if actor.is_system or actor.is_platform_admin:
        return ""
    role = actor.role_in(job.team) if job.team_id else None
    if role is not None and role_at_least(role, Role.DEVELOPER):
        return ""
    team = job.team.name if job.team is not None else "no team (platform admins only)"
    return (
        f"Only a developer (or above) of the job's team ({team}) or a platform admin may "
        f"cancel job #{job.pk}; your role there is {role or 'none'}."
    )


def audit_list() -> QuerySet[AuditEntry]:
    """The audit log, newest first."""
    return AuditEntry.objects.select_related("actor_user", "actor_token", "object_type")


def role_holders(*, minimum: str, team: Team | None = None, limit: int = 10) -> list[str]:
    """Usernames holding at least `minimum` in `team` (any team when None), for 403 pages.

    `platform-admin` without a team lists the platform admins (the only ones who hold it).
    """
    ranks = [role for role, rank in ROLE_RANK.items() if rank >= ROLE_RANK[minimum]]
    memberships = Membership.objects.filter(role__in=ranks)
    if team is not None:
        memberships = memberships.filter(team=team)
    names = (
        memberships.order_by("user__username")
        .values_list("user__username", flat=True)
        .distinct()[:limit]
    )
    return list(names)
