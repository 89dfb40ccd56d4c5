"""Choices of the deployments app."""

from django.db import models


class Language(models.TextChoices):
    """A service's main language (decides nothing yet; shown and filtered on)."""

    C = "c", "C"
    CPP = "c++", "C++"
    GO = "go", "Go"
    JAVA = "java", "Java"
    PYTHON = "python", "Python"
    RUST = "rust", "Rust"
    OTHER = "other", "Other"


class DeploymentMode(models.TextChoices):
    """Volume mode mounts the binary into the unchanged runtime image; image mode bakes it in."""

    VOLUME = "volume", "Volume"
    IMAGE = "image", "Image"


class DeliveryStrategy(models.TextChoices):
    """How volume mode brings the binary to the pod in an environment."""

    HOSTPATH = "hostPath", "hostPath (node directory, synced by a DaemonSet)"
    INIT_FETCH = "initFetch", "Init container fetch"
    IMAGE_VOLUME = "imageVolume", "Image volume (Kubernetes 1.35+)"


class BinaryState(models.TextChoices):
    """A binary version's life: active → yanked (kept, refused for new releases) → purged
    (file deleted by retention, row kept so old releases stay explainable)."""

    ACTIVE = "active", "Active"
    YANKED = "yanked", "Yanked"
    PURGED = "purged", "Purged"


class FileType(models.TextChoices):
    """What `deployments.elf.analyze_binary` recognised."""

    ELF = "elf", "ELF"
    JAR = "jar", "Java archive"
    SCRIPT = "script", "Script"
    OTHER = "other", "Other"


class Linkage(models.TextChoices):
    """Static or dynamic ELF linkage ("" for non-ELF files)."""

    STATIC = "static", "Static"
    DYNAMIC = "dynamic", "Dynamic"
    NONE = "", "—"


# Architectures in `uname -m` spelling and the aliases clients may send (OCI/Go/Debian names).
ARCH_ALIASES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    "x64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "arm": "arm",
    "armhf": "arm",
    "i386": "i386",
    "386": "i386",
    "i686": "i386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
    "loong64": "loongarch64",
    "noarch": "noarch",
}


def normalize_arch(value: str) -> str | None:
    """The `uname -m` name of an architecture alias (amd64 → x86_64), None when unknown."""
    return ARCH_ALIASES.get(value.strip().lower())


class ReleaseStatus(models.TextChoices):
    """What CD reports of a release (`POST /api/v1/releases/{id}/status/`)."""

    NONE = "", "Not reported"
    DEPLOYED = "deployed", "Deployed"
    HEALTHY = "healthy", "Healthy"
    FAILED = "failed", "Failed"


class Verdict(models.TextChoices):
    """A binary's compatibility with a target runtime image."""

    COMPATIBLE = "compatible", "Compatible"
    INCOMPATIBLE = "incompatible", "Incompatible"
    UNKNOWN = "unknown", "Unknown"


class PlanKind(models.TextChoices):
    """A rebase (a patched version of the same line) or an OS migration (another image)."""

    REBASE = "rebase", "Rebase"
    MIGRATION = "migration", "OS migration"


class PlanState(models.TextChoices):
    """A plan's life: a dry run (draft) until applied, then waves until done.

    draft -> applying -> completed; applying <-> paused; draft|applying|paused -> aborted;
    applying -> failed (a release reported failed stops the plan; retry-failed resumes it).
    """

    DRAFT = "draft", "Dry run"
    APPLYING = "applying", "Applying"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    ABORTED = "aborted", "Aborted"
    FAILED = "failed", "Failed"


class PlanItemState(models.TextChoices):
    """One deployment's move within a plan."""

    PENDING = "pending", "Pending"
    BLOCKED = "blocked", "Blocked"
    BUILDING = "building", "Building app image"
    RELEASED = "released", "Released"
    HEALTHY = "healthy", "Healthy"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class SourceBuildState(models.TextChoices):
    """A compile of an uploaded source archive inside an approved build image."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
