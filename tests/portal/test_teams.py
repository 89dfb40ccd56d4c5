"""require_team_role: the team/role check every app's services make before they write."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import PermissionDenied

from portal.actors import Actor
from portal.auth import token_create
from portal.choices import Role, Scope
from portal.teams import require_team_role

pytestmark = pytest.mark.django_db


def _token_actor(make_user, team, role=None) -> Actor:
    """A token of a new member of `team` (the team's highest role unless `role` is given)."""
    role = role or (Role.PLATFORM_ADMIN if team.is_platform else Role.MAINTAINER)
    creator = make_user(f"creator-{team.name}-{role}", team, role)
    token, _ = token_create(
        team=team, name="ci", scopes=[Scope.SERVICES_READ], actor=Actor(user=creator)
    )
    return Actor(token=token)


@pytest.mark.parametrize(
    ("role", "minimum", "allowed"),
    [
        (Role.VIEWER, Role.DEVELOPER, False),
        (Role.DEVELOPER, Role.DEVELOPER, True),
        (Role.MAINTAINER, Role.DEVELOPER, True),
        (Role.DEVELOPER, Role.MAINTAINER, False),
    ],
)
def test_members_need_the_minimum_role(make_user, service_team, role, minimum, allowed):
    actor = Actor(user=make_user("member", service_team, role))
    if allowed:
        require_team_role(actor=actor, team=service_team, minimum=minimum, what="deploy")
        return
    with pytest.raises(PermissionDenied) as refused:
        require_team_role(actor=actor, team=service_team, minimum=minimum, what="deploy")
    # ...and who to ask (issue 11): here nobody holds the role yet.
    assert str(refused.value.detail) == (
        f"You are not a {minimum} of team payments: only team payments ({minimum} or above) "
        f"may deploy. Team payments has no {minimum} yet; a platform admin adds members."
    )


def test_platform_admins_of_another_team_are_refused(admin_user, service_team):
    with pytest.raises(PermissionDenied, match="You are not a developer of team payments"):
        require_team_role(
            actor=Actor(user=admin_user), team=service_team, minimum=Role.DEVELOPER, what="deploy"
        )


def test_tokens_act_for_their_own_team_as_maintainer_at_most(
    make_user, service_team, platform_team
):
    own = _token_actor(make_user, service_team)
    require_team_role(actor=own, team=service_team, minimum=Role.MAINTAINER, what="create services")
    with pytest.raises(PermissionDenied) as below:
        require_team_role(
            actor=own, team=service_team, minimum=Role.PLATFORM_ADMIN, what="review images"
        )
    assert str(below.value.detail).startswith("This token's team role is below platform-admin:")
    with pytest.raises(PermissionDenied) as other:
        require_team_role(
            actor=_token_actor(make_user, platform_team),
            team=service_team,
            minimum=Role.VIEWER,
            what="read",
        )
    assert str(other.value.detail) == (
        "This token belongs to another team: only team payments (viewer or above) may read."
        " Ask one of them: creator-payments-maintainer."
    )


def test_a_developers_token_acts_as_a_developer(make_user, service_team):
    token = _token_actor(make_user, service_team, Role.DEVELOPER)
    require_team_role(actor=token, team=service_team, minimum=Role.DEVELOPER, what="deploy")
    with pytest.raises(PermissionDenied, match="below maintainer"):
        require_team_role(
            actor=token, team=service_team, minimum=Role.MAINTAINER, what="create services"
        )
