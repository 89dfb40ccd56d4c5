"""Template context shared by every page."""

from typing import Any

from django.http import HttpRequest

from .actors import Actor


def portal(request: HttpRequest) -> dict[str, Any]:
    """Expose the actor's platform-admin flag to the navigation."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_platform_admin": False}
    return {"is_platform_admin": Actor(user=user).is_platform_admin}
