"""Test data for the matcher, written with the ORM: OSV fixture records → Advisory and
AffectedPackage rows (the importer's mapping: ranges/versions/ecosystem_specific stored as
OSV JSON, one row per `affected[]` entry), and SBOMs with their packages."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from django.utils.dateparse import parse_datetime

from images.models import Advisory, AffectedPackage, Package, Sbom, SbomPackage

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "osv" / "matching"


def _severity(block: dict[str, Any]) -> str:
    return str((block.get("database_specific") or {}).get("severity", "")).lower()


def load_record(record: dict[str, Any]) -> Advisory:
    """Store one OSV record as the importer would (replacing an earlier revision)."""
    raw = json.dumps(record, sort_keys=True)
    advisory, _ = Advisory.objects.update_or_create(
        osv_id=record["id"],
        defaults={
            "modified": parse_datetime(record["modified"]),
            "published": parse_datetime(record["published"]) if "published" in record else None,
            "withdrawn": parse_datetime(record["withdrawn"]) if "withdrawn" in record else None,
            "summary": record.get("summary", "")[:500],
            "severity": _severity(record) or "unknown",
            "record": record,
            "record_sha256": hashlib.sha256(raw.encode()).hexdigest(),
        },
    )
    AffectedPackage.objects.filter(advisory=advisory).delete()
    for entry in record.get("affected", []):
        package = entry["package"]
        ecosystem = package["ecosystem"]
        AffectedPackage.objects.create(
            advisory=advisory,
            ecosystem=ecosystem,
            name=package["name"],
            purl=package.get("purl", ""),
            ranges=entry.get("ranges", []),
            versions=entry.get("versions", []),
            ecosystem_specific=entry.get("ecosystem_specific", {}),
            severity=_severity(entry),
            quarantined=""
            if ":" in ecosystem or ecosystem in ("Go", "PyPI", "npm", "crates.io")
            else "ecosystem without a release suffix",
        )
    return advisory


def load(name: str) -> Advisory:
    """Load tests/fixtures/osv/matching/<name>.json."""
    return load_record(json.loads((FIXTURES / f"{name}.json").read_text()))


def fixture_record(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


_counter = [0]


def make_sbom(
    ecosystem: str,
    packages: list[tuple[str, str] | tuple[str, str, str, str]],
    *,
    subject: str = "image",
) -> Sbom:
    """An SBOM of `ecosystem` with packages (name, version[, source name, source version]);
    a package without a source is its own source (dpkg's rule)."""
    _counter[0] += 1
    digest = "sha256:" + hashlib.sha256(f"sbom-{_counter[0]}-{ecosystem}".encode()).hexdigest()
    sbom = Sbom.objects.create(
        digest=digest,
        subject=subject,
        blob_name=f"sboms/{digest[7:]}.json.gz",
        blob_sha256=digest[7:],
        ecosystem=ecosystem,
        package_count=len(packages),
    )
    for spec in packages:
        add_package(sbom, ecosystem, spec)
    return sbom


def add_package(
    sbom: Sbom, ecosystem: str, spec: tuple[str, str] | tuple[str, str, str, str]
) -> Package:
    name, version = spec[0], spec[1]
    source_name, source_version = (spec[2], spec[3]) if len(spec) == 4 else (name, version)
    package, _ = Package.objects.get_or_create(
        ecosystem=ecosystem,
        name=name,
        version=version,
        arch="amd64",
        defaults={"source_name": source_name, "source_version": source_version},
    )
    SbomPackage.objects.get_or_create(sbom=sbom, package=package)
    return package
