"""Benchmark: a rebase plan and all its releases for 10,000 volume-mode deployments, and an OS
migration's verdict table, against the bare render loop of the same manifests.

Builds a throwaway PostgreSQL database next to the one `DATABASE_URL` names (Django's test
database machinery under the name `bench_rebase_<pid>`, migrated, dropped at the end unless
`--keep`), fills it with generated rows — teams, services with one binary each, four
environments, one runtime line with an old and a new version (the new one with ABI facts), a
second image for the migration — and times, in one run:

* `baseline_render`: the bare loop over the same deployments with no database — the release
  service's own renderer and strict validation (`manifest_input_for` + `_render`, what every
  stored release goes through), on rows loaded beforehand; `baseline_render_only` without
  the strict validation, for reference;
* `migration_table`: `migration_plan_create` over every deployment (the dry run: a verdict per
  deployment, items written), target <= 2 s;
* `rebase`: `rebase_plan_create` + `plan_apply` + every wave's `plan_wave_release` (what the
  `deployments.plan_wave` job runs) + `plan_advance` until completed; CD's healthy reports
  between waves are one bulk UPDATE (timed apart: a real CD reports per release, through
  the API). Target <= 60 s and <= 3x the baseline.

With `--workers 2` a wave's items are split between two processes (two workers on two
cores, each its own connection), the way two Celery workers would share the wave's jobs.

Prints JSON; exit status 1 when a target is missed.

    DATABASE_URL=postgres://… .venv/bin/python bench/rebase.py [--deployments 10000]
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

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

TARGET_REBASE_S = 60.0
TARGET_RATIO = 3.0
TARGET_MIGRATION_S = 2.0
ENVIRONMENTS = ("dev", "qa", "staging", "prod")
GLIBC = [f"GLIBC_2.{n}" for n in range(2, 37)]


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def populate(n_deployments: int) -> dict[str, Any]:
    """Generated rows; returns what the timing needs."""
    from deployments.models import BinaryVersion, Deployment, Environment, Service
    from images.models import BaseImage, ImageAbi, ImageVersion, Registry, Sbom
    from portal.models import Team

    teams = Team.objects.bulk_create(
        [Team(name="platform", is_platform=True)] + [Team(name=f"team{i}") for i in range(50)]
    )
    platform, service_teams = teams[0], teams[1:]
    registry = Registry.objects.create(name="local", url="http://127.0.0.1:5000", tls_verify=False)
    debian, other = BaseImage.objects.bulk_create(
        [
            BaseImage(
                name=name,
                kind="runtime",
                os_family="debian",
                os_version="12",
                owner_team=platform,
                registry=registry,
            )
            for name in ("runtime/debian", "runtime/other")
        ]
    )
    sboms = Sbom.objects.bulk_create(
        [
            Sbom(digest=_digest(n), subject="image", blob_name=n, blob_sha256="0")
            for n in ("new", "other")
        ]
    )
    ImageAbi.objects.bulk_create(
        [
            ImageAbi(
                sbom=s,
                libc_kind="glibc",
                libc_version="2.36",
                loader_paths=["/lib64/ld-linux-x86-64.so.2"],
                search_path=["/lib/x86_64-linux-gnu"],
                libraries=[
                    {
                        "path": "/lib/x86_64-linux-gnu/libc.so.6",
                        "soname": "libc.so.6",
                        "versions": GLIBC,
                    },
                    *(
                        {"path": f"/usr/lib/lib{i}.so.1", "soname": f"lib{i}.so.1", "versions": []}
                        for i in range(150)
                    ),
                ],
            )
            for s in sboms
        ]
    )
    old = ImageVersion.objects.create(
        base_image=debian,
        tag="12.1",
        digest=_digest("old"),
        registry=registry,
        arch="amd64",
        state="superseded",
    )
    new = ImageVersion.objects.create(
        base_image=debian,
        tag="12.2",
        digest=_digest("new"),
        registry=registry,
        arch="amd64",
        state="approved",
        sbom=sboms[0],
    )
    target = ImageVersion.objects.create(
        base_image=other,
        tag="1",
        digest=_digest("other"),
        registry=registry,
        arch="amd64",
        state="approved",
        sbom=sboms[1],
    )
    envs = Environment.objects.bulk_create(
        [Environment(name=e, namespace=f"apps-{e}", k8s_version="1.33") for e in ENVIRONMENTS]
    )
    n_services = max(n_deployments // len(ENVIRONMENTS), 1)
    services = Service.objects.bulk_create(
        [
            Service(name=f"svc{i}", team=service_teams[i % len(service_teams)])
            for i in range(n_services)
        ]
    )
    binaries = BinaryVersion.objects.bulk_create(
        [
            BinaryVersion(
                service=s,
                version="1.0.0",
                arch="x86_64",
                filename="app",
                file=f"binaries/{i}",
                sha256=hashlib.sha256(f"bin{i}".encode()).hexdigest(),
                size=1,
                file_type="elf",
                linkage="dynamic",
                interpreter="/lib64/ld-linux-x86-64.so.2",
                libc="glibc",
                needed=["libc.so.6"],
                version_needs=[["libc.so.6", "GLIBC_2.34"], ["libc.so.6", "GLIBC_2.17"]],
            )
            for i, s in enumerate(services)
        ]
    )
    Deployment.objects.bulk_create(
        [
            Deployment(
                service=services[i // len(ENVIRONMENTS)],
                environment=envs[i % len(ENVIRONMENTS)],
                mode="volume",
                runtime_version=old,
                binary_version=binaries[i // len(ENVIRONMENTS)],
                env=[{"name": "TZ", "value": "Asia/Shanghai"}],
                ports=[8080],
                resources={"cpu_request": "100m", "memory_request": "128Mi"},
            )
            for i in range(n_services * len(ENVIRONMENTS))
        ],
        batch_size=2000,
    )
    return {
        "old": old,
        "new": new,
        "target": target,
        "other": other,
        "deployments": n_services * len(ENVIRONMENTS),
    }


def baseline(new: Any) -> dict[str, Any]:
    """The bare render loop: the same manifests, rows loaded first, no query while timed."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from deployments.manifests import render_deployment
    from deployments.models import Deployment
    from deployments.services.releases import _render, manifest_input_for

    rows = list(
        Deployment.objects.select_related(
            "service__team", "environment", "binary_version"
        ).order_by("pk")
    )
    new = type(new).objects.select_related("base_image", "registry").get(pk=new.pk)
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        for d in rows:
            m = manifest_input_for(deployment=d, number=2, binary=d.binary_version, runtime=new)
            _render(m, k8s_version=d.environment.k8s_version)
        full = time.perf_counter() - start
        start = time.perf_counter()
        for d in rows:
            m = manifest_input_for(deployment=d, number=2, binary=d.binary_version, runtime=new)
            render_deployment(m, k8s_version=d.environment.k8s_version)
        render_only = time.perf_counter() - start
    assert not queries.captured_queries, "the baseline must not touch the database"  # noqa: S101
    return {
        "render_and_validate_s": round(full, 2),
        "render_only_s": round(render_only, 2),
        "manifests": len(rows),
    }


def _wave_worker(args: tuple[int, int, list[int]]) -> dict[str, int]:
    """One worker process's share of a wave (a fresh connection, like a second Celery worker)."""
    from django.db import connections

    connections.close_all()
    from deployments.models import Plan
    from deployments.services.plans.waves import _release_chunk

    plan_id, chunk, ids = args
    plan = Plan.objects.select_related("to_version__base_image", "to_version__registry").get(
        pk=plan_id
    )
    totals: dict[str, int] = {}
    for start in range(0, len(ids), chunk):
        for k, v in _release_chunk(plan, ids[start : start + chunk]).items():
            totals[k] = totals.get(k, 0) + v
    connections.close_all()
    return totals


def run_rebase(data: dict[str, Any], workers: int) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext

    from deployments.models import PlanItem, Release
    from deployments.services import (
        plan_advance,
        plan_apply,
        plan_wave_release,
        rebase_plan_create,
    )
    from portal.actors import Actor

    admin = Actor.system_actor("bench")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with CaptureQueriesContext(connection) as create_queries:
        plan = rebase_plan_create(
            actor=admin,
            from_version_id=data["old"].pk,
            to_version_id=data["new"].pk,
            wave_size=10_000,
        )
    timings["create_s"] = time.perf_counter() - start
    reports_s = 0.0
    waves = 0
    start = time.perf_counter()
    plan = plan_apply(plan_id=plan.pk, actor=admin)
    while plan.state == "applying":
        wave = plan.current_wave
        waves += 1
        if workers > 1:
            ids = list(
                PlanItem.objects.filter(plan=plan, wave=wave, state="pending")
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            import multiprocessing

            connections.close_all()
            shares = [ids[i::workers] for i in range(workers)]
            chunk = settings.PORTAL_PLAN_RELEASE_CHUNK
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                pool.map(_wave_worker, [(plan.pk, chunk, s) for s in shares if s])
        else:
            plan_wave_release(plan_id=plan.pk, wave=wave)
        t = time.perf_counter()
        released = PlanItem.objects.filter(plan=plan, wave=wave, state="released")
        Release.objects.filter(pk__in=released.values("release_id")).update(status="healthy")
        released.update(state="healthy")
        reports_s += time.perf_counter() - t
        plan = plan_advance(plan_id=plan.pk)
    total = time.perf_counter() - start - reports_s
    timings["apply_and_waves_s"] = total
    releases = Release.objects.filter(runtime_version=data["new"]).count()
    return {
        "state": plan.state,
        "waves": waves,
        "releases": releases,
        "create_queries": len(create_queries.captured_queries),
        "create_s": round(timings["create_s"], 2),
        "apply_and_waves_s": round(total, 2),
        "cd_reports_bulk_s": round(reports_s, 2),
        "total_s": round(timings["create_s"] + total, 2),
    }


def run_migration(data: dict[str, Any]) -> dict[str, Any]:
    from deployments.services import migration_plan_create, plan_abort
    from portal.actors import Actor

    admin = Actor.system_actor("bench")
    start = time.perf_counter()
    plan = migration_plan_create(
        actor=admin,
        target_version_id=data["target"].pk,
        base_image_id=data["old"].base_image_id,
    )
    seconds = time.perf_counter() - start
    items = plan.items.count()
    verdicts = set(plan.items.values_list("verdict", flat=True))
    plan_abort(plan_id=plan.pk, actor=admin)
    return {"seconds": round(seconds, 2), "items": items, "verdicts": sorted(verdicts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="processes sharing a wave")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("Set DATABASE_URL to a PostgreSQL database (a throwaway twin is used).")
        return 2

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    settings.PORTAL_URL = "https://portal.example.com"
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_rebase_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, keepdb=args.keep, serialize=False)
    try:
        start = time.perf_counter()
        data = populate(args.deployments)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        setup_s = time.perf_counter() - start
        base = baseline(data["new"])
        migration = run_migration(data)
        rebase = run_rebase(data, args.workers)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    ratio = rebase["total_s"] / max(base["render_and_validate_s"], 0.01)
    report = {
        "benchmark": "rebase",
        "deployments": data["deployments"],
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "setup_seconds": round(setup_s, 1),
        "baseline_render": base,
        "migration_table": migration,
        "rebase": rebase,
        "ratio_to_baseline": round(ratio, 2),
        "targets": {
            "rebase_total_s": TARGET_REBASE_S,
            "ratio_to_baseline": TARGET_RATIO,
            "migration_table_s": TARGET_MIGRATION_S,
        },
        "target_met": {
            "rebase_total": rebase["total_s"] <= TARGET_REBASE_S,
            "ratio": ratio <= TARGET_RATIO,
            "migration_table": migration["seconds"] <= TARGET_MIGRATION_S,
            "all_released": rebase["releases"] == data["deployments"]
            and rebase["state"] == "completed",
        },
    }
    print(json.dumps(report, indent=2))
    return 0 if all(report["target_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
