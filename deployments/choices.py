"""Choices of the deployments app."""

from django.db import models


class Role(models.TextChoices):
    """A member's role in a team, lowest first; each role includes the ones below it."""

    VIEWER = "viewer", "Viewer"
    DEVELOPER = "developer", "Developer"
    MAINTAINER = "maintainer", "Maintainer"
    PLATFORM_ADMIN = "platform-admin", "Platform admin"


ROLE_RANK = {Role.VIEWER: 1, Role.DEVELOPER: 2, Role.MAINTAINER: 3, Role.PLATFORM_ADMIN: 4}


def role_at_least(role: str, minimum: str) -> bool:
    """Whether `role` includes `minimum`."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]
