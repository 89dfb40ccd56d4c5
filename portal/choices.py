"""Choices of the portal package: team roles, job states and API token scopes."""

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Role(models.TextChoices):
    """A member's role in a team, lowest first; each role includes the ones below it."""

    VIEWER = "viewer", _("Viewer")
    DEVELOPER = "developer", _("Developer")
    MAINTAINER = "maintainer", _("Maintainer")
    PLATFORM_ADMIN = "platform-admin", _("Platform admin")


ROLE_RANK: dict[str, int] = {
    Role.VIEWER: 1,
    Role.DEVELOPER: 2,
    Role.MAINTAINER: 3,
    Role.PLATFORM_ADMIN: 4,
}


# A role as a sentence names it ("only team payments (developer or above) may …").
_ROLE_IN_SENTENCE: dict[str, Promise] = {
    Role.VIEWER: pgettext_lazy("role in a sentence", "viewer"),
    Role.DEVELOPER: pgettext_lazy("role in a sentence", "developer"),
    Role.MAINTAINER: pgettext_lazy("role in a sentence", "maintainer"),
    Role.PLATFORM_ADMIN: pgettext_lazy("role in a sentence", "platform-admin"),
}


def role_in_sentence(role: str) -> str:
    """The role's name inside a sentence, in the request's language (the value if unknown)."""
    name = _ROLE_IN_SENTENCE.get(role)
    return str(name) if name is not None else role


def role_at_least(role: str, minimum: str) -> bool:
    """Whether `role` includes `minimum`."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]


class JobState(models.TextChoices):
    """The state of a Job; see the Job docstring for the allowed transitions."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")

    @classmethod
    def final(cls) -> frozenset[str]:
        """States a job never leaves."""
        return frozenset({cls.SUCCEEDED, cls.FAILED, cls.CANCELLED})

    @classmethod
    def live(cls) -> frozenset[str]:
        """States of a job that still has work to do."""
        return frozenset({cls.QUEUED, cls.RUNNING})


class TokenKind(models.TextChoices):
    """What an API token is for: the API (acting for its creator) or a node's binary download."""

    API = "api", _("API")
    FETCH = "fetch", _("Fetch (binary download only)")


class Scope(models.TextChoices):
    """API token scopes (DESIGN.md §5)."""

    IMAGES_READ = "images:read", _("Read the catalog")
    IMAGES_WRITE = "images:write", _("Create and submit image requests")
    IMAGES_REVIEW = "images:review", _("Approve, reject and publish (platform teams only)")
    DOCKERFILE_CHECK = "dockerfile:check", _("Check Dockerfiles")
    SERVICES_READ = "services:read", _("Read services")
    SERVICES_WRITE = "services:write", _("Create and change services")
    BINARIES_READ = "binaries:read", _("Read and download binary versions")
    BINARIES_WRITE = "binaries:write", _("Upload, yank binary versions")
    DEPLOYMENTS_READ = "deployments:read", _("Read deployments and releases")
    DEPLOYMENTS_WRITE = "deployments:write", _("Create deployments and releases")
    WEBHOOKS_READ = "webhooks:read", _("Read webhook subscriptions and their deliveries")
    WEBHOOKS_WRITE = "webhooks:write", _("Manage webhook subscriptions, send tests, redeliver")


# The minimum team role a scope needs: a token can never do more than its team's role allows.
SCOPE_MIN_ROLE: dict[str, str] = {
    Scope.IMAGES_READ: Role.VIEWER,
    Scope.IMAGES_WRITE: Role.DEVELOPER,
    Scope.IMAGES_REVIEW: Role.PLATFORM_ADMIN,
    Scope.DOCKERFILE_CHECK: Role.VIEWER,
    Scope.SERVICES_READ: Role.VIEWER,
    Scope.SERVICES_WRITE: Role.MAINTAINER,
    Scope.BINARIES_READ: Role.VIEWER,
    Scope.BINARIES_WRITE: Role.DEVELOPER,
    Scope.DEPLOYMENTS_READ: Role.VIEWER,
    Scope.DEPLOYMENTS_WRITE: Role.DEVELOPER,
    Scope.WEBHOOKS_READ: Role.VIEWER,
    Scope.WEBHOOKS_WRITE: Role.MAINTAINER,
}
