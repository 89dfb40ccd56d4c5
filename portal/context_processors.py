"""Template context shared by every page."""

from typing import Any

from django.http import HttpRequest

from .actors import Actor
from .auth import TokenUser


def portal(request: HttpRequest) -> dict[str, Any]:
    """Expose the actor's platform-admin flag to the navigation (a token's, on the API's
    browsable pages: its `request.user` is no Django user)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_platform_admin": False}
    actor = Actor(token=user.token) if isinstance(user, TokenUser) else Actor(user=user)
    return {"is_platform_admin": actor.is_platform_admin}
