"""Choices of the images app."""

from django.db import models


class ImageKind(models.TextChoices):
    """Build bases carry toolchains; runtime bases run applications."""

    BUILD = "build", "Build"
    RUNTIME = "runtime", "Runtime"


class ImageStatus(models.TextChoices):
    """A catalog entry's standing under the standard."""

    APPROVED = "approved", "Approved"
    DEPRECATED = "deprecated", "Deprecated"
    RESTRICTED = "restricted", "Restricted"
    BLOCKED = "blocked", "Blocked"


class OsFamily(models.TextChoices):
    """Operating systems the lifecycle table knows."""

    CENTOS = "centos", "CentOS"
    ROCKY = "rocky", "Rocky Linux"
    ALMALINUX = "almalinux", "AlmaLinux"
    DEBIAN = "debian", "Debian"
    UBUNTU = "ubuntu", "Ubuntu"
    ALPINE = "alpine", "Alpine"
    OPENEULER = "openeuler", "openEuler"
    ANOLIS = "anolis", "Anolis OS"
    KYLIN = "kylin", "Kylin"
    NONE = "none", "None (scratch)"


class VersionState(models.TextChoices):
    """An ImageVersion's life: candidate → approved → superseded; revoked at any time."""

    CANDIDATE = "candidate", "Candidate"
    APPROVED = "approved", "Approved"
    SUPERSEDED = "superseded", "Superseded"
    REVOKED = "revoked", "Revoked"

    @classmethod
    def usable_as_base(cls) -> frozenset[str]:
        """States in which a version may be built FROM (pinned by digest)."""
        return frozenset({cls.APPROVED, cls.CANDIDATE})


class RecipeKind(models.TextChoices):
    """How an image is made: a Dockerfile on an approved base, or an OS bootstrap."""

    DOCKERFILE = "dockerfile", "Dockerfile"
    BOOTSTRAP = "bootstrap", "Bootstrap (mmdebstrap)"


class RequestState(models.TextChoices):
    """An ImageRequest's life; see the ImageRequest docstring for the allowed transitions."""

    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    BUILDING = "building", "Building"
    SCANNING = "scanning", "Scanning"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"

    @classmethod
    def open(cls) -> frozenset[str]:
        """States in which a request holds its image:tag (no second one may be opened)."""
        return frozenset(
            {cls.SUBMITTED, cls.CHANGES_REQUESTED, cls.APPROVED, cls.BUILDING, cls.SCANNING}
        )

    @classmethod
    def editable(cls) -> frozenset[str]:
        """States in which the requester's team may still edit and submit a request."""
        return frozenset({cls.DRAFT, cls.CHANGES_REQUESTED})


class RequestEventKind(models.TextChoices):
    """What happened on a request's timeline."""

    CREATED = "created", "Created"
    UPDATED = "updated", "Recipe edited"
    SUBMITTED = "submitted", "Submitted"
    COMMENT = "comment", "Comment"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    BUILD_STARTED = "build_started", "Build started"
    BUILT = "built", "Built and pushed"
    FAILED = "failed", "Build failed"
    PUBLISHED = "published", "Published"
