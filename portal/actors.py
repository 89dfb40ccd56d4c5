"""Who is acting: a logged-in user or an API token. Services take an Actor, views build one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .choices import ROLE_RANK, Role, TokenKind

if TYPE_CHECKING:
    from portal.models import ApiToken, Team


_UNKNOWN: Any = object()


def _rank(role: str) -> int:
    return ROLE_RANK[role]


@dataclass(frozen=True)
class Actor:
    """The user or the token behind a request (or `system` for workers and commands)."""

    user: Any = None
    token: ApiToken | None = None
    system: str = ""

    @classmethod
    def from_request(cls, request: Any) -> Actor:
        """Build the actor of a Django or DRF request."""
        auth = getattr(request, "auth", None)
        from portal.models import ApiToken

        if isinstance(auth, ApiToken):
            return cls(token=auth)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls(user=user)
        return cls(system="anonymous")

    @classmethod
    def system_actor(cls, name: str = "system") -> Actor:
        """An actor for work the portal does by itself (workers, beat, management commands)."""
        return cls(system=name)

    def __str__(self) -> str:
        if self.token is not None:
            return f"token:{self.token.team.name}/{self.token.name}"
        if self.user is not None:
            return f"user:{self.user.get_username()}"
        return f"system:{self.system}"

    @property
    def is_system(self) -> bool:
        """Whether nobody outside the portal is behind this action."""
        return self.user is None and self.token is None

    @property
    def person(self) -> Any:
        """The person behind the action: the user, or the token's creator (None: nobody)."""
        if self.token is not None:
            return self.token.created_by
        return self.user

    def _token_role(self) -> str | None:
        """The token's role in its own team: min(team cap, its creator's current role).

        Read at use (the creator's role is loaded with the token on every request), so
        a demotion or a removal takes effect on the creator's next call. A fetch token is a
        viewer whatever its creator: it is accepted by the binary download only.
        """
        token = self.token
        assert token is not None  # noqa: S101 - only called for token actors
        if token.kind == TokenKind.FETCH:
            return Role.VIEWER
        if token.created_by_id is None:
            return None
        # `token_authenticate` annotates the role (one query per request); elsewhere, ask.
        role: str | None = getattr(token, "creator_role", _UNKNOWN)
        if role is _UNKNOWN:
            from portal.models import Membership

            role = (
                Membership.objects.filter(user_id=token.created_by_id, team_id=token.team_id)
                .values_list("role", flat=True)
                .first()
            )
        if role is None:
            return None
        cap = Role.PLATFORM_ADMIN if token.team.is_platform else Role.MAINTAINER
        return min(role, cap, key=_rank)

    @property
    def token_refusal(self) -> str:
        """Why a token acts for nobody (empty when it has a role): for the 403's message."""
        token = self.token
        if token is None or self._token_role() is not None:
            return ""
        if token.created_by is None:
            return (
                f"Token {token.team.name}/{token.name} has no person behind it and acts for "
                "nobody; revoke it and create one with `manage.py create_token --user NAME` "
                "or on the Tokens page."
            )
        return (
            f"Token {token.team.name}/{token.name} acts for "
            f"{token.created_by.get_username()}, who is no longer a member of team "
            f"{token.team.name}; a member of the team must create a new token."
        )

    def role_in(self, team: Team | None) -> str | None:
        """The actor's role in `team`; a token's is its creator's, capped by its team."""
        if team is None:
            return None
        if self.is_system:
            return Role.PLATFORM_ADMIN
        if self.token is not None:
            if self.token.team_id != team.pk:
                return None
            return self._token_role()
        roles = [m.role for m in self.user.memberships.all() if m.team_id == team.pk]
        return max(roles, key=_rank) if roles else None

    @property
    def highest_role(self) -> str | None:
        """The actor's highest role in any team (a token's: its role in its own team)."""
        if self.is_system:
            return Role.PLATFORM_ADMIN
        if self.token is not None:
            return self._token_role()
        roles = [m.role for m in self.user.memberships.all()]
        if self.user.is_superuser:
            roles.append(Role.PLATFORM_ADMIN)
        return max(roles, key=_rank) if roles else None

    @property
    def is_platform_admin(self) -> bool:
        """Whether the actor may review and publish base images."""
        return self.highest_role == Role.PLATFORM_ADMIN

    @property
    def team_ids(self) -> set[int]:
        """The teams the actor belongs to (a token that acts for nobody: none)."""
        if self.token is not None:
            return {self.token.team_id} if self._token_role() is not None else set()
        if self.user is not None:
            return {m.team_id for m in self.user.memberships.all()}
        return set()
