"""Choices of the portal package: job states and API token scopes."""

from django.db import models


class JobState(models.TextChoices):
    """The state of a Job; see the Job docstring for the allowed transitions."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def final(cls) -> frozenset[str]:
        """States a job never leaves."""
        return frozenset({cls.SUCCEEDED, cls.FAILED, cls.CANCELLED})

    @classmethod
    def live(cls) -> frozenset[str]:
        """States of a job that still has work to do."""
        return frozenset({cls.QUEUED, cls.RUNNING})


class Scope(models.TextChoices):
    """API token scopes (DESIGN.md §5)."""

    IMAGES_READ = "images:read", "Read the catalog"
    IMAGES_WRITE = "images:write", "Create and submit image requests"
    IMAGES_REVIEW = "images:review", "Approve, reject and publish (platform teams only)"
    DOCKERFILE_CHECK = "dockerfile:check", "Check Dockerfiles"
    SERVICES_READ = "services:read", "Read services"
    SERVICES_WRITE = "services:write", "Create and change services"
    BINARIES_READ = "binaries:read", "Read and download binary versions"
    BINARIES_WRITE = "binaries:write", "Upload, yank binary versions"
    DEPLOYMENTS_READ = "deployments:read", "Read deployments and releases"
    DEPLOYMENTS_WRITE = "deployments:write", "Create deployments and releases"


# The minimum team role a scope needs: a token can never do more than its team's role allows.
SCOPE_MIN_ROLE = {
    Scope.IMAGES_READ: "viewer",
    Scope.IMAGES_WRITE: "developer",
    Scope.IMAGES_REVIEW: "platform-admin",
    Scope.DOCKERFILE_CHECK: "viewer",
    Scope.SERVICES_READ: "viewer",
    Scope.SERVICES_WRITE: "maintainer",
    Scope.BINARIES_READ: "viewer",
    Scope.BINARIES_WRITE: "developer",
    Scope.DEPLOYMENTS_READ: "viewer",
    Scope.DEPLOYMENTS_WRITE: "developer",
}
