"""Template context of the images app on every page: the first run's demo progress."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .demo_progress import demo_progress


def demo_bootstrap(request: HttpRequest) -> dict[str, Any]:
    """The demo images still building, for the banner every signed-in user sees."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"demo_progress": demo_progress()}
