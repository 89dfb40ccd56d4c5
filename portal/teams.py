"""Teams and roles: the one check every app's services make before they write for a team."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from rest_framework.exceptions import PermissionDenied

from .actors import Actor
from .choices import role_at_least, role_in_sentence
from .models import Team
from .selectors import role_holders


def require_team_role(*, actor: Actor, team: Team, minimum: str, what: str | Promise) -> None:
    """Refuse (403) unless the actor holds at least `minimum` in `team`.

    Tokens act for their own team only (as its maintainer at most); platform admins of
    another team are not members and are refused like anyone else.

    `what` completes "only team … (developer or above) may …": a lazy phrase
    (`pgettext_lazy("may …", "deploy this service")`), so the whole sentence is in the
    request's language.

    Raises:
        PermissionDenied: the actor's role in `team` is missing or below `minimum`; the
            message says who may `what`.
    """
    role = actor.role_in(team)
    if role is None or not role_at_least(role, minimum):
        role_name = role_in_sentence(minimum)
        who = (
            _("This token belongs to another team")
            if actor.token is not None
            else _("You are not a %(role)s of team %(team)s")
            % {"role": role_name, "team": team.name}
        )
        if actor.token is not None and actor.token.team_id == team.pk:
            who = _("This token's team role is below %(role)s") % {"role": role_name}
        holders = role_holders(minimum=minimum, team=team)
        ask = (
            _("Ask one of them: %(names)s.") % {"names": ", ".join(holders)}
            if holders
            else _("Team %(team)s has no %(role)s yet; a platform admin adds members.")
            % {"team": team.name, "role": role_name}
        )
        refusal = _("%(who)s: only team %(team_name)s (%(minimum)s or above) may %(what)s.") % {
            "who": who,
            "team_name": team.name,
            "minimum": role_name,
            "what": str(what),
        }
        # One sentence after the other: English puts a space between them, Chinese does not.
        raise PermissionDenied(
            pgettext("two sentences", "%(first)s %(second)s") % {"first": refusal, "second": ask}
        )
