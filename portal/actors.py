"""Who is acting: a logged-in user or an API token. Services take an Actor, views build one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .choices import ROLE_RANK, Role

if TYPE_CHECKING:
    from portal.models import ApiToken, Team


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

    def role_in(self, team: Team | None) -> str | None:
        """The actor's role in `team` (a token acts as its team's maintainer at most)."""
        if team is None:
            return None
        if self.is_system:
            return Role.PLATFORM_ADMIN
        if self.token is not None:
            if self.token.team_id != team.pk:
                return None
            return Role.PLATFORM_ADMIN if team.is_platform else Role.MAINTAINER
        roles = [m.role for m in self.user.memberships.all() if m.team_id == team.pk]
        return max(roles, key=lambda r: ROLE_RANK[r]) if roles else None

    @property
    def highest_role(self) -> str | None:
        """The actor's highest role in any team."""
        if self.is_system:
            return Role.PLATFORM_ADMIN
        if self.token is not None:
            return Role.PLATFORM_ADMIN if self.token.team.is_platform else Role.MAINTAINER
        roles = [m.role for m in self.user.memberships.all()]
        if self.user.is_superuser:
            roles.append(Role.PLATFORM_ADMIN)
        return max(roles, key=lambda r: ROLE_RANK[r]) if roles else None

    @property
    def is_platform_admin(self) -> bool:
        """Whether the actor may review and publish base images."""
        return self.highest_role == Role.PLATFORM_ADMIN

    @property
    def team_ids(self) -> set[int]:
        """The teams the actor belongs to."""
        if self.token is not None:
            return {self.token.team_id}
        if self.user is not None:
            return {m.team_id for m in self.user.memberships.all()}
        return set()
