"""Writes on teams and memberships: platform admins create teams and manage any membership;
a team's maintainers manage their own team's members (up to maintainer)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .actors import Actor
from .audit import audit_record
from .choices import ROLE_RANK, Role
from .models import Membership, Team
from .selectors import role_holders


def _refuse_unless_manager(*, actor: Actor, team: Team, role: str | None = None) -> None:
    """Platform admins manage every team; a maintainer manages their team up to maintainer."""
    if actor.is_platform_admin:
        return
    mine = actor.role_in(team)
    if mine is not None and ROLE_RANK[mine] >= ROLE_RANK[Role.MAINTAINER]:
        if role is None or ROLE_RANK[role] <= ROLE_RANK[Role.MAINTAINER]:
            return
        raise PermissionDenied(
            _("Only a platform admin may grant the %(role)s role.") % {"role": role}
        )
    holders = ", ".join(role_holders(minimum=Role.MAINTAINER, team=team)) or "-"
    raise PermissionDenied(
        _(
            "Managing team %(team)s's members needs the maintainer role in %(team)s "
            "(held by: %(holders)s) or a platform admin."
        )
        % {"team": team.name, "holders": holders}
    )


@transaction.atomic
def team_create(
    *, actor: Actor, name: str, display_name: str = "", is_platform: bool = False
) -> Team:
    """Create a team (platform admins only)."""
    if not actor.is_platform_admin:
        admins = ", ".join(role_holders(minimum=Role.PLATFORM_ADMIN)) or "-"
        raise PermissionDenied(
            _("Creating a team needs the platform-admin role (held by: %(names)s).")
            % {"names": admins}
        )
    if Team.objects.filter(name=name).exists():
        raise ValidationError({"name": _("A team named %(name)s exists.") % {"name": name}})
    team = Team(name=name, display_name=display_name, is_platform=is_platform)
    team.full_clean()
    team.save()
    audit_record(actor=actor, action="team.create", obj=team, after=_team_facts(team))
    return team


def _team_facts(team: Team) -> dict[str, Any]:
    return {"name": team.name, "display_name": team.display_name, "is_platform": team.is_platform}


@transaction.atomic
def membership_set(*, actor: Actor, team: Team, username: str, role: str) -> Membership:
    """Add `username` to `team` with `role`, or change their role there."""
    if role not in Role.values:
        raise ValidationError({"role": _("Unknown role %(role)s.") % {"role": role}})
    if role == Role.PLATFORM_ADMIN and not team.is_platform:
        raise ValidationError({"role": _("Only a platform team's members may be platform admins.")})
    _refuse_unless_manager(actor=actor, team=team, role=role)
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError({"username": _("No user %(name)s.") % {"name": username}})
    membership = Membership.objects.filter(team=team, user=user).first()
    before = {"role": membership.role} if membership is not None else None
    if membership is not None and before is not None:
        current = membership.role
        if ROLE_RANK[current] > ROLE_RANK[Role.MAINTAINER]:
            _refuse_unless_manager(actor=actor, team=team, role=current)
        membership.role = role
    else:
        membership = Membership(team=team, user=user, role=role)
    membership.full_clean()
    membership.save()
    audit_record(
        actor=actor,
        action="membership.set",
        obj=membership,
        before=before,
        after={"team": team.name, "user": username, "role": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Actor, team: Team, username: str) -> None:
    """Remove `username` from `team`."""
    membership = Membership.objects.filter(team=team, user__username=username).first()
    if membership is None:
        raise ValidationError(
            {"username": _("%(name)s is no member of %(team)s.") % {"name": username, "team": team}}
        )
    _refuse_unless_manager(actor=actor, team=team, role=membership.role)
    audit_record(
        actor=actor,
        action="membership.remove",
        obj=membership,
        before={"team": team.name, "user": username, "role": membership.role},
    )
    membership.delete()
