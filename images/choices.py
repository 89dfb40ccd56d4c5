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
