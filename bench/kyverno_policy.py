"""Benchmark: the Kyverno admission policy export at company size, against the bare reads.

Builds a throwaway PostgreSQL database next to the one `DATABASE_URL` names (`test_<name>`,
migrated, dropped at the end unless `--keep`), fills it with image versions in every state,
binary versions with pushed artifacts, succeeded app-image builds and environments, and times
`render_kyverno_policy(kyverno_policy_input())` (the selector's reads, the checks and the YAML)
against a baseline measured in the same run: the same rows read with bare `values_list`
queries (what any export must at least do). Runs at a tenth of the size and at full size.

Prints JSON: p50/p95/max in ms, the query count, the export's size, its number of objects
and its largest object as the API server receives it (JSON), the ratio to the baseline and
the growth from a tenth to full size. Targets: the work is linear in the admitted references,
so growth <= 15x for 10x the rows and a ratio to the baseline <= 10x; and every object at
most OBJECT_BYTES_MAX (1 MiB, under etcd's 1.5 MiB) at both sizes.

    DATABASE_URL=postgres://… .venv/bin/python bench/kyverno_policy.py [--binaries 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from support import measure_tenth_and_full, timed

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

TARGET_GROWTH = 15.0
TARGET_RATIO = 10.0


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def populate(n_binaries: int) -> None:
    """Image versions (a twentieth of the binaries, every state), binaries with artifacts,
    app-image jobs and one environment per ten services."""
    from deployments.models import BinaryVersion, Environment, Service
    from images.models import BaseImage, ImageVersion, Registry
    from portal.models import Job, Team

    platform = Team.objects.create(name="platform", is_platform=True)
    teams = Team.objects.bulk_create([Team(name=f"team{i}") for i in range(50)])
    registry = Registry.objects.create(name="local", url="https://harbor.example.com")
    images = BaseImage.objects.bulk_create(
        [
            BaseImage(name=f"runtime/os{i}", kind="runtime", os_family="debian", os_version="12",
                      owner_team=platform, registry=registry)
            for i in range(20)
        ]
    )  # fmt: skip
    states = ("approved", "superseded", "revoked", "candidate")
    ImageVersion.objects.bulk_create(
        [
            ImageVersion(base_image=images[i % len(images)], registry=registry, tag=f"v{i}",
                         tags=[f"v{i}"], digest="sha256:" + _hex(f"v{i}"), size=1, arch="amd64",
                         state=states[i % len(states)])
            for i in range(max(n_binaries // 20, 4))
        ]
    )  # fmt: skip
    n_services = max(n_binaries // 10, 1)
    services = Service.objects.bulk_create(
        [Service(name=f"svc{i}", team=teams[i % len(teams)]) for i in range(n_services)]
    )
    BinaryVersion.objects.bulk_create(
        [
            BinaryVersion(service=services[i % n_services], version=f"1.0.{i}", arch="x86_64",
                          filename="app", file=f"binaries/{i}", sha256=_hex(f"b{i}"), size=1,
                          file_type="elf", state="active" if i % 7 else "purged",
                          artifact_ref=(f"harbor.example.com/binaries/svc{i % n_services}"
                                        f"@sha256:{_hex(f'a{i}')}"))
            for i in range(n_binaries)
        ],
        batch_size=5000,
    )  # fmt: skip
    Job.objects.bulk_create(
        [
            Job(kind="deployments.app_image_build", state="succeeded",
                result={"app_image": f"harbor.example.com/apps/svc{i}@sha256:{_hex(f'p{i}')}"})
            for i in range(max(n_binaries // 10, 1))
        ],
        batch_size=5000,
    )  # fmt: skip
    Environment.objects.bulk_create(
        [
            Environment(name=f"env{i}", namespace=f"ns{i}", k8s_version="1.33",
                        delivery_strategy="hostPath" if i % 2 else "initFetch",
                        hostpath_root=f"/data/bin{i}")
            for i in range(max(n_services // 10, 1))
        ]
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binaries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the test database")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("Set DATABASE_URL to a PostgreSQL database (its test_ twin is used).")
        return 2

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from deployments.manifests.kyverno import (
        OBJECT_BYTES_MAX,
        kyverno_policy_objects,
        render_kyverno_policy,
    )
    from deployments.models import BinaryVersion, Environment
    from deployments.selectors.policy import kyverno_policy_input
    from images.models import ImageVersion
    from portal.models import Job

    def export() -> str:
        return render_kyverno_policy(kyverno_policy_input())

    def baseline() -> int:
        rows = list(ImageVersion.objects.values_list("registry__url", "base_image__name", "digest"))
        rows += list(BinaryVersion.objects.values_list("artifact_ref", flat=True))
        rows += list(Job.objects.filter(kind="deployments.app_image_build").values_list("result"))
        rows += list(Environment.objects.values_list("namespace", "hostpath_root"))
        return len(rows)

    def measure(n: int) -> dict[str, Any]:
        populate(n)
        with CaptureQueriesContext(connection) as ctx:
            text = export()
        objects = kyverno_policy_objects(kyverno_policy_input())
        sizes = [len(json.dumps(o, separators=(",", ":")).encode()) for o in objects]
        return {
            "binaries": n,
            "queries": len(ctx.captured_queries),
            "export_bytes": len(text.encode()),
            "objects": len(objects),
            "largest_object_bytes": max(sizes),
            "policy_object_bytes": sizes[-1],
            "export": timed(export, args.runs),
            "baseline_reads": timed(baseline, args.runs),
        }

    tenth, full = measure_tenth_and_full(measure, args.binaries, smallest=20, keep=args.keep)
    growth = full["export"]["p50_ms"] / max(tenth["export"]["p50_ms"], 0.01)
    ratio = full["export"]["p50_ms"] / max(full["baseline_reads"]["p50_ms"], 0.01)
    report = {
        "benchmark": "kyverno_policy",
        "tenth": tenth,
        "full": full,
        "growth_p50_tenth_to_full": round(growth, 1),
        "ratio_to_baseline_p50": round(ratio, 1),
        "target": {
            "growth_max": TARGET_GROWTH,
            "ratio_max": TARGET_RATIO,
            "object_bytes_max": OBJECT_BYTES_MAX,
        },
        "target_met": growth <= TARGET_GROWTH
        and ratio <= TARGET_RATIO
        and max(tenth["largest_object_bytes"], full["largest_object_bytes"]) <= OBJECT_BYTES_MAX,
    }
    print(json.dumps(report, indent=2))
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
