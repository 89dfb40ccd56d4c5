"""Choices of the deployments app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    """A service's main language (decides nothing yet; shown and filtered on)."""

    C = "c", _("C")
    CPP = "c++", _("C++")
    GO = "go", _("Go")
    JAVA = "java", _("Java")
    PYTHON = "python", _("Python")
    RUST = "rust", _("Rust")
    OTHER = "other", _("Other")


class DeploymentMode(models.TextChoices):
    """Volume mode mounts the binary into the unchanged runtime image; image mode bakes it in."""

    VOLUME = "volume", _("Volume")
    IMAGE = "image", _("Image")


class DeliveryStrategy(models.TextChoices):
    """How volume mode brings the binary to the pod in an environment."""

    HOSTPATH = "hostPath", _("hostPath (node directory, synced by a DaemonSet)")
    INIT_FETCH = "initFetch", _("Init container fetch")
    IMAGE_VOLUME = "imageVolume", _("Image volume (Kubernetes 1.35+)")


class BinaryState(models.TextChoices):
    """A binary version's life: active → yanked (kept, refused for new releases) → purged
    (file deleted by retention, row kept so old releases stay explainable)."""

    ACTIVE = "active", _("Active")
    YANKED = "yanked", _("Yanked")
    PURGED = "purged", _("Purged")


class FileType(models.TextChoices):
    """What `deployments.elf.analyze_binary` recognised."""

    ELF = "elf", _("ELF")
    JAR = "jar", _("Java archive")
    SCRIPT = "script", _("Script")
    OTHER = "other", _("Other")


class Linkage(models.TextChoices):
    """Static or dynamic ELF linkage ("" for non-ELF files)."""

    STATIC = "static", _("Static")
    DYNAMIC = "dynamic", _("Dynamic")
    NONE = "", _("—")


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

    NONE = "", _("Not reported")
    DEPLOYED = "deployed", _("Deployed")
    HEALTHY = "healthy", _("Healthy")
    FAILED = "failed", _("Failed")


class Verdict(models.TextChoices):
    """A binary's compatibility with a target runtime image."""

    COMPATIBLE = "compatible", _("Compatible")
    INCOMPATIBLE = "incompatible", _("Incompatible")
    UNKNOWN = "unknown", _("Unknown")


class PlanKind(models.TextChoices):
    """A rebase (a patched version of the same line) or an OS migration (another image)."""

    REBASE = "rebase", _("Rebase")
    MIGRATION = "migration", _("OS migration")


class PlanState(models.TextChoices):
    """A plan's life: a dry run (draft) until applied, then waves until done.

    draft -> applying -> completed; applying <-> paused; draft|applying|paused -> aborted;
    applying -> failed (a release reported failed stops the plan; retry-failed resumes it).
    """

    DRAFT = "draft", _("Dry run")
    APPLYING = "applying", _("Applying")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    ABORTED = "aborted", _("Aborted")
    FAILED = "failed", _("Failed")


class PlanItemState(models.TextChoices):
    """One deployment's move within a plan."""

    PENDING = "pending", _("Pending")
    BLOCKED = "blocked", _("Blocked")
    BUILDING = "building", _("Building app image")
    RELEASED = "released", _("Released")
    HEALTHY = "healthy", _("Healthy")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class SourceBuildState(models.TextChoices):
    """A compile of an uploaded source archive inside an approved build image."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
