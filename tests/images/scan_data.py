"""Scan data made directly with the ORM: SBOMs, packages, advisories, aliases, findings.

(The scanner and the matcher make these rows in production; the read side is tested on rows
of known shape.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from django.utils import timezone

from images.models import (
    Advisory,
    AdvisoryAlias,
    AffectedPackage,
    Finding,
    Package,
    Sbom,
    SbomPackage,
)

_counter = itertools.count()


def sbom(digest: str | None = None, subject: str = "image", ecosystem: str = "Debian:12") -> Sbom:
    n = next(_counter)
    digest = digest or "sha256:" + hashlib.sha256(f"sbom {n}".encode()).hexdigest()
    return Sbom.objects.create(
        digest=digest,
        subject=subject,
        blob_name=f"sboms/{digest[7:]}.json.gz",
        blob_sha256=digest[7:],
        distro_id="debian",
        distro_version="12",
        ecosystem=ecosystem,
    )


def package(
    name: str, version: str = "1.0-1", ecosystem: str = "Debian:12", source: str = ""
) -> Package:
    pkg, _ = Package.objects.get_or_create(
        ecosystem=ecosystem,
        name=name,
        version=version,
        arch="amd64",
        defaults={"source_name": source or name, "source_version": version, "kind": "deb"},
    )
    return pkg


def advisory(
    osv_id: str,
    *,
    aliases: tuple[str, ...] = (),
    upstream: tuple[str, ...] = (),
    related: tuple[str, ...] = (),
    severity: str = "high",
    summary: str = "",
    affected: tuple[tuple[str, str], ...] = (),
    withdrawn: bool = False,
) -> Advisory:
    now = timezone.now()
    record = {"id": osv_id, "modified": now.isoformat(), "aliases": list(aliases)}
    adv = Advisory.objects.create(
        osv_id=osv_id,
        modified=now,
        published=now - dt.timedelta(days=3),
        withdrawn=now if withdrawn else None,
        summary=summary or f"{osv_id} in something",
        severity=severity,
        record=record,
        record_sha256=hashlib.sha256(osv_id.encode()).hexdigest(),
    )
    for kind, names in (("alias", aliases), ("upstream", upstream), ("related", related)):
        for name in names:
            AdvisoryAlias.objects.create(advisory=adv, alias=name, kind=kind)
    for ecosystem, name in affected:
        AffectedPackage.objects.create(
            advisory=adv,
            ecosystem=ecosystem,
            name=name,
            ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0-1"}]}],
        )
    return adv


def finding(
    sbom_: Sbom,
    package_: Package,
    advisory_: Advisory,
    *,
    severity: str | None = None,
    fix_state: str = "fixed",
    fixed_version: str = "2.0-1",
    resolved: bool = False,
    first_seen: dt.datetime | None = None,
    resolved_at: dt.datetime | None = None,
) -> Finding:
    SbomPackage.objects.get_or_create(sbom=sbom_, package=package_)
    now = timezone.now()
    row = Finding.objects.create(
        sbom=sbom_,
        package=package_,
        advisory=advisory_,
        installed_version=package_.version,
        fixed_version=fixed_version if fix_state == "fixed" else "",
        fix_state=fix_state,
        severity=severity or advisory_.severity,
        matched_name=package_.source_name,
        package_name=package_.name,
        last_seen=now,
        resolved_at=resolved_at or (now if resolved else None),
        resolution="fixed_in_data" if (resolved or resolved_at) else "",
    )
    if first_seen is not None:
        Finding.objects.filter(pk=row.pk).update(first_seen=first_seen)
        row.first_seen = first_seen
    return row
