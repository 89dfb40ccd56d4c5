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


class ScanState(models.TextChoices):
    """Where an image or binary version stands with the scanner."""

    UNSCANNED = "unscanned", "Not scanned"
    QUEUED = "queued", "Scan queued"
    SCANNING = "scanning", "Scanning"
    SCANNED = "scanned", "Scanned"
    FAILED = "failed", "Scan failed"


class SbomSubject(models.TextChoices):
    """What a scanned digest is: an image manifest or an uploaded binary file."""

    IMAGE = "image", "Image"
    BINARY = "binary", "Binary"


class Severity(models.TextChoices):
    """An advisory's (or finding's) severity, from CVSS or the ecosystem's own rating."""

    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    NONE = "none", "None"
    UNKNOWN = "unknown", "Unknown"


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

    FIXED = "fixed", "Fix available"
    NOT_FIXED = "not_fixed", "No fix yet"
    WONT_FIX = "wont_fix", "Won't fix"
    NOT_AFFECTED = "not_affected", "Not affected"
    UNKNOWN = "unknown", "Unknown"


class FindingResolution(models.TextChoices):
    """Why a finding is no longer open (findings are resolved, never deleted)."""

    WITHDRAWN = "withdrawn", "Advisory withdrawn"
    FIXED_IN_DATA = "fixed_in_data", "No longer affected by the advisory data"
    PACKAGE_GONE = "package_gone", "Package no longer present"


class AliasKind(models.TextChoices):
    """How an advisory names another record (OSV `aliases`, `upstream`, `related`)."""

    ALIAS = "alias", "Alias"
    UPSTREAM = "upstream", "Upstream"
    RELATED = "related", "Related"


class ImportSource(models.TextChoices):
    """Where an advisory import reads its OSV records from."""

    PATH = "path", "Server path"
    UPLOAD = "upload", "Upload"
    URL = "url", "Internal mirror URL"


class WaiverScope(models.TextChoices):
    """What a waiver covers."""

    IMAGE_VERSION = "image_version", "Image version"
    BASE_IMAGE = "base_image", "Base image"
    SERVICE = "service", "Service"
    TEAM = "team", "Team"


class WaiverState(models.TextChoices):
    """A waiver's review state (expiry is derived from `expires_at`, never a stored state)."""

    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"


class VexStatus(models.TextChoices):
    """OpenVEX 0.2.0 statuses."""

    NOT_AFFECTED = "not_affected", "Not affected"
    AFFECTED = "affected", "Affected"
    FIXED = "fixed", "Fixed"
    UNDER_INVESTIGATION = "under_investigation", "Under investigation"


class VexJustification(models.TextChoices):
    """OpenVEX 0.2.0 justifications (required with `not_affected`)."""

    COMPONENT_NOT_PRESENT = "component_not_present", "Component not present"
    VULNERABLE_CODE_NOT_PRESENT = "vulnerable_code_not_present", "Vulnerable code not present"
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
