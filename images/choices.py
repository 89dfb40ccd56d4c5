"""Choices of the images app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ImageKind(models.TextChoices):
    """Build bases carry toolchains; runtime bases run applications."""

    BUILD = "build", _("Build")
    RUNTIME = "runtime", _("Runtime")


class ImageStatus(models.TextChoices):
    """A catalog entry's standing under the standard."""

    APPROVED = "approved", _("Approved")
    DEPRECATED = "deprecated", _("Deprecated")
    RESTRICTED = "restricted", _("Restricted")
    BLOCKED = "blocked", _("Blocked")


class OsFamily(models.TextChoices):
    """Operating systems the lifecycle table knows."""

    CENTOS = "centos", _("CentOS")
    ROCKY = "rocky", _("Rocky Linux")
    ALMALINUX = "almalinux", _("AlmaLinux")
    DEBIAN = "debian", _("Debian")
    UBUNTU = "ubuntu", _("Ubuntu")
    ALPINE = "alpine", _("Alpine")
    OPENEULER = "openeuler", _("openEuler")
    ANOLIS = "anolis", _("Anolis OS")
    KYLIN = "kylin", _("Kylin")
    NONE = "none", _("None (scratch)")


class VersionState(models.TextChoices):
    """An ImageVersion's life: candidate → approved → superseded; revoked at any time."""

    CANDIDATE = "candidate", _("Candidate")
    APPROVED = "approved", _("Approved")
    SUPERSEDED = "superseded", _("Superseded")
    REVOKED = "revoked", _("Revoked")

    @classmethod
    def usable_as_base(cls) -> frozenset[str]:
        """States in which a version may be built FROM (pinned by digest)."""
        return frozenset({cls.APPROVED, cls.CANDIDATE})


class RecipeKind(models.TextChoices):
    """How an image is made: a Dockerfile on an approved base, or an OS bootstrap."""

    DOCKERFILE = "dockerfile", _("Dockerfile")
    BOOTSTRAP = "bootstrap", _("Bootstrap (mmdebstrap)")


class RequestState(models.TextChoices):
    """An ImageRequest's life; see the ImageRequest docstring for the allowed transitions."""

    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    CHANGES_REQUESTED = "changes_requested", _("Changes requested")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    BUILDING = "building", _("Building")
    SCANNING = "scanning", _("Scanning")
    PUBLISHED = "published", _("Published")
    FAILED = "failed", _("Failed")

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

    CREATED = "created", _("Created")
    UPDATED = "updated", _("Recipe edited")
    SUBMITTED = "submitted", _("Submitted")
    COMMENT = "comment", _("Comment")
    CHANGES_REQUESTED = "changes_requested", _("Changes requested")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    BUILD_STARTED = "build_started", _("Build started")
    BUILT = "built", _("Built and pushed")
    FAILED = "failed", _("Build failed")
    PUBLISHED = "published", _("Published")


class ScanState(models.TextChoices):
    """Where an image or binary version stands with the scanner."""

    UNSCANNED = "unscanned", _("Not scanned")
    QUEUED = "queued", _("Scan queued")
    SCANNING = "scanning", _("Scanning")
    SCANNED = "scanned", _("Scanned")
    FAILED = "failed", _("Scan failed")


class SbomSubject(models.TextChoices):
    """What a scanned digest is: an image manifest or an uploaded binary file."""

    IMAGE = "image", _("Image")
    BINARY = "binary", _("Binary")


class Severity(models.TextChoices):
    """An advisory's (or finding's) severity, from CVSS or the ecosystem's own rating."""

    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")
    NONE = "none", _("None")
    UNKNOWN = "unknown", _("Unknown")


# Higher is worse; unknown ranks with medium for thresholds only where a caller says so.
SEVERITY_RANK = {
    Severity.CRITICAL: 5,
    Severity.HIGH: 4,
    Severity.MEDIUM: 3,
    Severity.LOW: 2,
    Severity.NONE: 1,
    Severity.UNKNOWN: 0,
}


class FixState(models.TextChoices):
    """Whether the advisory data offers a fix for the installed package."""

    FIXED = "fixed", _("Fix available")
    NOT_FIXED = "not_fixed", _("No fix yet")
    WONT_FIX = "wont_fix", _("Won't fix")
    NOT_AFFECTED = "not_affected", _("Not affected")
    UNKNOWN = "unknown", _("Unknown")


class FindingResolution(models.TextChoices):
    """Why a finding is no longer open (findings are resolved, never deleted)."""

    WITHDRAWN = "withdrawn", _("Advisory withdrawn")
    FIXED_IN_DATA = "fixed_in_data", _("No longer affected by the advisory data")
    PACKAGE_GONE = "package_gone", _("Package no longer present")


class AliasKind(models.TextChoices):
    """How an advisory names another record (OSV `aliases`, `upstream`, `related`)."""

    ALIAS = "alias", _("Alias")
    UPSTREAM = "upstream", _("Upstream")
    RELATED = "related", _("Related")


class ImportSource(models.TextChoices):
    """Where an advisory import reads its OSV records from."""

    PATH = "path", _("Server path")
    UPLOAD = "upload", _("Upload")
    URL = "url", _("Internal mirror URL")


class WaiverScope(models.TextChoices):
    """What a waiver covers."""

    IMAGE_VERSION = "image_version", _("Image version")
    BASE_IMAGE = "base_image", _("Base image")
    SERVICE = "service", _("Service")
    TEAM = "team", _("Team")


class WaiverState(models.TextChoices):
    """A waiver's review state (expiry is derived from `expires_at`, never a stored state)."""

    REQUESTED = "requested", _("Requested")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    REVOKED = "revoked", _("Revoked")


class VexStatus(models.TextChoices):
    """OpenVEX 0.2.0 statuses."""

    NOT_AFFECTED = "not_affected", _("Not affected")
    AFFECTED = "affected", _("Affected")
    FIXED = "fixed", _("Fixed")
    UNDER_INVESTIGATION = "under_investigation", _("Under investigation")


class VexJustification(models.TextChoices):
    """OpenVEX 0.2.0 justifications (required with `not_affected`)."""

    COMPONENT_NOT_PRESENT = "component_not_present", _("Component not present")
    VULNERABLE_CODE_NOT_PRESENT = "vulnerable_code_not_present", _("Vulnerable code not present")
    VULNERABLE_CODE_NOT_IN_EXECUTE_PATH = (
        "vulnerable_code_not_in_execute_path",
        "Vulnerable code not in execute path",
    )
    VULNERABLE_CODE_CANNOT_BE_CONTROLLED_BY_ADVERSARY = (
        "vulnerable_code_cannot_be_controlled_by_adversary",
        "Vulnerable code cannot be controlled by adversary",
    )
    INLINE_MITIGATIONS_ALREADY_EXIST = (
        "inline_mitigations_already_exist",
        "Inline mitigations already exist",
    )
