"""Scan results made directly with the ORM (no syft, no matcher): SBOMs, packages, advisories
and findings for the waiver and gate tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from images.models import (
    Advisory,
    AdvisoryAlias,
    AffectedPackage,
    Finding,
    ImageVersion,
    Package,
    Sbom,
    SbomPackage,
)

ECOSYSTEM = "Debian:12"


def scanned(version: ImageVersion) -> Sbom:
    """Mark `version` scanned with an SBOM of its own digest (no packages yet)."""
    sbom, _ = Sbom.objects.get_or_create(
        digest=version.digest,
        defaults={
            "subject": "image",
            "blob_name": f"sboms/{version.digest[7:]}.json.gz",
            "blob_sha256": "0" * 64,
            "ecosystem": ECOSYSTEM,
            "distro_id": "debian",
            "distro_version": "12",
        },
    )
    ImageVersion.objects.filter(pk=version.pk).update(
        sbom=sbom, scan_state="scanned", scanned_at=timezone.now()
    )
    version.refresh_from_db()
    return sbom


def advisory(
    osv_id: str, severity: str = "critical", aliases: tuple[str, ...] = (), kind: str = "alias"
) -> Advisory:
    """An imported advisory with its alias rows."""
    record = {"id": osv_id, "modified": "2026-01-01T00:00:00Z", "aliases": list(aliases)}
    adv = Advisory.objects.create(
        osv_id=osv_id,
        modified=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        severity=severity,
        record=record,
        record_sha256="1" * 64,
    )
    for alias in aliases:
        AdvisoryAlias.objects.create(advisory=adv, alias=alias, kind=kind)
    return adv


def finding(
    sbom: Sbom,
    adv: Advisory,
    *,
    package: str = "libc6",
    source: str = "glibc",
    installed: str = "2.36-9+deb12u3",
    fixed: str = "2.36-9+deb12u4",
    fix_state: str = "fixed",
    severity: str | None = None,
) -> Finding:
    """An open finding of `adv` in `package` (created with its package, link and affected row)."""
    pkg, _ = Package.objects.get_or_create(
        ecosystem=ECOSYSTEM,
        name=package,
        version=installed,
        arch="amd64",
        defaults={"source_name": source, "source_version": installed, "kind": "deb"},
    )
    SbomPackage.objects.get_or_create(sbom=sbom, package=pkg)
    AffectedPackage.objects.get_or_create(advisory=adv, ecosystem=ECOSYSTEM, name=source or package)
    return Finding.objects.create(
        sbom=sbom,
        package=pkg,
        advisory=adv,
        installed_version=installed,
        fixed_version=fixed if fix_state == "fixed" else "",
        fix_state=fix_state,
        severity=severity or adv.severity,
        matched_name=source or package,
        package_name=package,
        last_seen=timezone.now(),
    )
