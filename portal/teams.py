"""Teams and roles: the one check every app's services make before they write for a team."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext as _
from rest_framework.exceptions import PermissionDenied

from .actors import Actor
from .choices import role_at_least
from .models import Team
from .selectors import role_holders


def require_team_role(*, actor: Actor, team: Team, minimum: str, what: str) -> None:
    """Refuse (403) unless the actor holds at least `minimum` in `team`.

    Tokens act for their own team only (as its maintainer at most); platform admins of
    another team are not members and are refused like anyone else.

    Raises:
        PermissionDenied: the actor's role in `team` is missing or below `minimum`; the
            message says who may `what`.
    """
    role = actor.role_in(team)
    if role is None or not role_at_least(role, minimum):
        who = (
            _("This token belongs to another team")
            if actor.token is not None
            else _("You are not a %(role)s of team %(team)s") % {"role": minimum, "team": team.name}
        )
        if actor.token is not None and actor.token.team_id == team.pk:
            who = _("This token's team role is below %(role)s") % {"role": minimum}
        holders = role_holders(minimum=minimum, team=team)
        ask = " " + (
            _("Ask one of them: %(names)s.") % {"names": ", ".join(holders)}
            if holders
            else _("Team %(team)s has no %(role)s yet; a platform admin adds members.")
            % {"team": team.name, "role": minimum}
        )
        raise PermissionDenied(
            gettext("%(who)s: only team %(team_name)s (%(minimum)s or above) may %(what)s.")
            % {"who": who, "team_name": team.name, "minimum": minimum, "what": what}
            + ask
        )
