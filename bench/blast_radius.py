"""Benchmark: the blast radius of one CVE over 10,000 deployments, against a plain COUNT.

Builds a throwaway PostgreSQL database next to the one `DATABASE_URL` names (Django's test
database machinery: `test_<name>`, migrated, dropped at the end unless `--keep`), fills it
with generated rows — teams, services, environments, image versions with their SBOMs, binary
versions, deployments in both modes, a CVE with Debian and Go records aliasing it, and
background advisories so the findings table is not only the CVE's — and times
`deployments.selectors.impact.advisory_impact` for a platform admin (everything) and for a
service team's member (its part), against a baseline measured in the same run: a bare
`COUNT(*)` of the same affected deployments (one query, what any answer must at least do).

Runs at a tenth of the size and at full size (the growth between them), and prints JSON:
p50/p95/max in ms for each, the query count, the ratio to the baseline, the target (p95 <=
300 ms for the admin at full size) and whether it was met; exit status 1 when missed.

    DATABASE_URL=postgres://… .venv/bin/python bench/blast_radius.py [--deployments 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from support import measure_tenth_and_full, timed

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

TARGET_P95_MS = 300.0
ENVIRONMENTS = ("dev", "qa", "staging", "prod")


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def populate(n_deployments: int) -> dict[str, Any]:
    """Generated rows; returns what the timing needs."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from deployments.models import BinaryVersion, Deployment, Environment, Service
    from images.models import (
        Advisory,
        AdvisoryAlias,
        BaseImage,
        Finding,
        ImageVersion,
        Package,
        Registry,
        Sbom,
    )
    from portal.models import Membership, Team

    now = timezone.now()
    n_services = max(n_deployments // len(ENVIRONMENTS), 1)
    teams = Team.objects.bulk_create(
        [Team(name="platform", is_platform=True)] + [Team(name=f"team{i}") for i in range(100)]
    )
    platform, service_teams = teams[0], teams[1:]
    registry = Registry.objects.create(name="local", url="http://127.0.0.1:5000", tls_verify=False)
    images = BaseImage.objects.bulk_create(
        [
            BaseImage(
                name=f"runtime/os{i}",
                kind="runtime",
                os_family="debian",
                os_version="12",
                owner_team=platform,
                registry=registry,
            )
            for i in range(20)
        ]
    )
    image_sboms = Sbom.objects.bulk_create(
        [
            Sbom(digest=_digest(f"img{i}"), subject="image", blob_name=f"s/{i}", blob_sha256="0")
            for i in range(200)
        ]
    )
    versions = ImageVersion.objects.bulk_create(
        [
            ImageVersion(
                base_image=images[i % 20],
                tag=f"12.{i}",
                digest=_digest(f"img{i}"),
                registry=registry,
                sbom=image_sboms[i],
                scan_state="scanned",
            )
            for i in range(200)
        ]
    )
    envs = Environment.objects.bulk_create(
        [Environment(name=e, namespace=f"apps-{e}", k8s_version="1.33") for e in ENVIRONMENTS]
    )
    services = Service.objects.bulk_create(
        [
            Service(name=f"svc{i}", team=service_teams[i % len(service_teams)])
            for i in range(n_services)
        ]
    )
    binary_sboms = Sbom.objects.bulk_create(
        [
            Sbom(digest=_digest(f"bin{i}"), subject="binary", blob_name=f"b/{i}", blob_sha256="0")
            for i in range(n_services)
        ]
    )
    binaries = BinaryVersion.objects.bulk_create(
        [
            BinaryVersion(
                service=services[i],
                version="1.0.0",
                arch="x86_64",
                filename="app",
                file=f"binaries/{i}",
                sha256=hashlib.sha256(f"bin{i}".encode()).hexdigest(),
                size=1,
                file_type="elf",
                sbom=binary_sboms[i],
                scan_state="scanned",
            )
            for i in range(n_services)
        ]
    )
    deployments = [
        Deployment(
            service=services[i // len(ENVIRONMENTS)],
            environment=envs[i % len(ENVIRONMENTS)],
            mode="volume" if i % 3 else "image",
            runtime_version=versions[(i * 7) % 200],
            binary_version=binaries[i // len(ENVIRONMENTS)],
        )
        for i in range(n_services * len(ENVIRONMENTS))
    ]
    Deployment.objects.bulk_create(deployments, batch_size=2000)

    def advisory(osv_id: str, severity: str = "high") -> Advisory:
        return Advisory(
            osv_id=osv_id, modified=now, severity=severity, record={}, record_sha256="0"
        )

    cve, deb, go = Advisory.objects.bulk_create(
        [
            advisory("CVE-2024-0001", "critical"),
            advisory("DEBIAN-CVE-2024-0001", "critical"),
            advisory("GO-2024-0001"),
        ]
    )
    background = Advisory.objects.bulk_create(
        [advisory(f"DEBIAN-CVE-2023-{i:04d}", "medium") for i in range(300)]
    )
    AdvisoryAlias.objects.bulk_create(
        [
            AdvisoryAlias(advisory=deb, alias="CVE-2024-0001", kind="upstream"),
            AdvisoryAlias(advisory=go, alias="CVE-2024-0001", kind="alias"),
            *(
                AdvisoryAlias(advisory=a, alias=a.osv_id.removeprefix("DEBIAN-"), kind="upstream")
                for a in background
            ),
        ]
    )
    libc = Package.objects.create(ecosystem="Debian:12", name="libc6", version="2.36-9")
    stdlib = Package.objects.create(ecosystem="Go", name="stdlib", version="1.21.0")
    others = Package.objects.bulk_create(
        [Package(ecosystem="Debian:12", name=f"lib{i}", version="1.0") for i in range(300)]
    )
    findings = []
    for i, sbom in enumerate(image_sboms):
        if i % 2 == 0:  # half the image versions carry the CVE
            findings.append(_finding(Finding, sbom, libc, deb, now, "critical"))
        findings += [
            _finding(Finding, sbom, others[j], background[j], now, "medium") for j in range(300)
        ]
    for i, sbom in enumerate(binary_sboms):
        if i % 10 == 0:  # one Go binary in ten
            findings.append(_finding(Finding, sbom, stdlib, go, now, "high"))
        findings += [
            _finding(Finding, sbom, others[j], background[j], now, "medium")
            for j in range(i % 5, 300, 60)
        ]
    Finding.objects.bulk_create(findings, batch_size=5000)
    member = get_user_model().objects.create_user(username="bench-dev")
    Membership.objects.create(user=member, team=service_teams[0], role="developer")
    return {
        "cve": cve.osv_id,
        "member": member,
        "deployments": len(deployments),
        "findings": len(findings),
        "image_versions": len(versions),
        "binary_versions": len(binaries),
    }


def _finding(model: Any, sbom: Any, package: Any, advisory: Any, now: Any, severity: str) -> Any:
    return model(
        sbom=sbom,
        package=package,
        advisory=advisory,
        installed_version=package.version,
        fix_state="fixed",
        severity=severity,
        last_seen=now,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the test database")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("Set DATABASE_URL to a PostgreSQL database (its test_ twin is used).")
        return 2

    import django

    django.setup()
    from django.db import connection
    from django.db.models import Q
    from django.test.utils import CaptureQueriesContext

    from deployments.models import BinaryVersion, Deployment
    from deployments.selectors.impact import advisory_impact
    from images.models import Finding, ImageVersion
    from portal.actors import Actor

    def measure(n_deployments: int) -> dict[str, Any]:
        setup_start = time.perf_counter()
        data = populate(n_deployments)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        setup_s = time.perf_counter() - setup_start
        admin, member = Actor.system_actor("bench"), Actor(user=data["member"])

        def baseline() -> int:
            # The same affected deployments, counted in one bare query: no alias family, no
            # grouping, no scoping — the floor of any answer.
            sboms = Finding.objects.filter(
                advisory__osv_id__in=["DEBIAN-CVE-2024-0001", "GO-2024-0001"],
                resolved_at__isnull=True,
            ).values("sbom_id")
            return Deployment.objects.filter(
                Q(runtime_version__in=ImageVersion.objects.filter(sbom_id__in=sboms))
                | Q(binary_version__in=BinaryVersion.objects.filter(sbom_id__in=sboms))
            ).count()

        expected = baseline()
        impact = advisory_impact(advisory_ref=data["cve"], actor=admin)
        assert impact.counts["deployments"] == expected, (impact.counts, expected)  # noqa: S101
        scoped = advisory_impact(advisory_ref=data["cve"], actor=member)
        with CaptureQueriesContext(connection) as queries:
            advisory_impact(advisory_ref=data["cve"], actor=admin)
        results = {
            "baseline_count": timed(baseline, args.runs),
            "impact_admin": timed(
                lambda: advisory_impact(advisory_ref=data["cve"], actor=admin), args.runs
            ),
            "impact_service_team": timed(
                lambda: advisory_impact(advisory_ref=data["cve"], actor=Actor(user=data["member"])),
                args.runs,
            ),
        }
        return {
            "data": {k: v for k, v in data.items() if k != "member"},
            "setup_seconds": round(setup_s, 1),
            "affected": {
                "deployments": impact.counts["deployments"],
                "by_mode": impact.counts["deployments_by_mode"],
                "image_versions": impact.counts["image_versions"],
                "binary_versions": impact.counts["binary_versions"],
                "services": impact.counts["services"],
                "teams": impact.counts["teams"],
                "service_team_deployments": scoped.counts["deployments"],
            },
            "queries": len(queries.captured_queries),
            **results,
            "ratio_to_baseline_p50": round(
                results["impact_admin"]["p50_ms"] / max(results["baseline_count"]["p50_ms"], 0.01),
                1,
            ),
        }

    tenth, full = measure_tenth_and_full(
        measure, args.deployments, smallest=len(ENVIRONMENTS), keep=args.keep
    )
    p95 = full["impact_admin"]["p95_ms"]
    report = {
        "benchmark": "blast_radius",
        "full": full,
        "tenth": tenth,
        "growth_p50_tenth_to_full": round(
            full["impact_admin"]["p50_ms"] / max(tenth["impact_admin"]["p50_ms"], 0.01), 1
        ),
        "target_p95_ms": TARGET_P95_MS,
        "target_met": p95 <= TARGET_P95_MS,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
