"""What a scan records, once per digest: the SBOM, its normalised packages and the ABI facts.

A digest is an image manifest digest or `sha256:<hex>` of an uploaded binary file, so an
image version and a binary version with the same bytes share one scan. `Package` rows are
deduplicated across every SBOM: two images with the same `libc6` share one row.
"""

from __future__ import annotations

from django.db import models

from ..choices import SbomSubject
from .catalog import digest_validator


class Sbom(models.Model):
    """One scanned digest: its syft-json SBOM (gzip, content-addressed in storage) and facts.

    syft-json is the canonical form: it alone keeps dpkg `source`/`sourceVersion`, per-package
    file lists, rpm epochs and the distro. CycloneDX is produced from it on export.
    """

    digest = models.CharField(max_length=71, unique=True, validators=[digest_validator])
    subject = models.CharField(max_length=10, choices=SbomSubject.choices)
    blob_name = models.CharField(
        max_length=300, help_text="Storage name of the gzip syft-json (content-addressed)."
    )
    blob_sha256 = models.CharField(max_length=64, help_text="sha256 of the uncompressed JSON.")
    blob_size = models.BigIntegerField(default=0, help_text="Compressed bytes.")
    syft_version = models.CharField(max_length=40, blank=True)
    distro_id = models.CharField(max_length=60, blank=True, help_text="os-release ID.")
    distro_version = models.CharField(max_length=60, blank=True, help_text="os-release VERSION_ID.")
    distro_name = models.CharField(max_length=200, blank=True, help_text="PRETTY_NAME.")
    ecosystem = models.CharField(
        max_length=80, blank=True, help_text="OSV ecosystem of the distro, e.g. Debian:12."
    )
    package_count = models.PositiveIntegerField(default=0)
    packages = models.ManyToManyField(
        "images.Package", through="images.SbomPackage", related_name="sboms"
    )
    scan_job = models.ForeignKey(
        "portal.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    matched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} {self.digest[:19]} ({self.package_count} packages)"


class Package(models.Model):
    """One installed package, deduplicated by (OSV ecosystem, name, version, arch).

    `source_name`/`source_version` follow dpkg's rule: a package without `Source` is its own
    source (the binary's name and version). Advisories for Debian name source packages
    (glibc, perl), so matching looks up both names.
    """

    ecosystem = models.CharField(max_length=80)
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=255)
    arch = models.CharField(max_length=40, blank=True)
    source_name = models.CharField(max_length=255, blank=True)
    source_version = models.CharField(max_length=255, blank=True)
    purl = models.CharField(max_length=1000, blank=True)
    kind = models.CharField(
        max_length=30, blank=True, help_text="syft's type: deb, rpm, apk, go-module…"
    )

    class Meta:
        ordering = ["ecosystem", "name", "version", "arch"]
        constraints = [
            models.UniqueConstraint(
                fields=["ecosystem", "name", "version", "arch"], name="package_unique_identity"
            )
        ]
        indexes = [
            models.Index(fields=["ecosystem", "name"], name="package_eco_name"),
            models.Index(fields=["ecosystem", "source_name"], name="package_eco_source"),
        ]

    def __str__(self) -> str:
        return f"{self.ecosystem} {self.name} {self.version}"


class SbomPackage(models.Model):
    """A package as one SBOM contains it (the link between digests and packages)."""

    sbom = models.ForeignKey(Sbom, on_delete=models.CASCADE, related_name="package_links")
    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="sbom_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sbom", "package"], name="sbompackage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.sbom_id} → {self.package_id}"


class ImageAbi(models.Model):
    """An image's ABI facts, read once per digest with pyelftools (for OS migration checks).

    `libraries` is a list of `{"path", "soname", "versions": [...]}` for every shared library
    on the loader's search path; `versions` are the symbol versions it defines
    (`.gnu.version_d`, e.g. GLIBC_2.2.5 … GLIBC_2.36).
    """

    sbom = models.OneToOneField(Sbom, on_delete=models.CASCADE, related_name="abi")
    libc_kind = models.CharField(max_length=10, blank=True, help_text="glibc, musl or blank.")
    libc_version = models.CharField(max_length=20, blank=True)
    loader_paths = models.JSONField(default=list, blank=True)
    search_path = models.JSONField(default=list, blank=True)
    libraries = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "image ABI"

    def __str__(self) -> str:
        return f"{self.sbom.digest[:19]} {self.libc_kind} {self.libc_version}"
