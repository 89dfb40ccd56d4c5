"""The company-size data set of `bench/scale.py`, written with `bulk_create` (run in a
subprocess of the bench with `DATABASE_URL` naming the bench's own, migrated database).

At `--scale 1`: 300 teams (2 platform), 10,000 services, 100,000 binary versions (5 busy
services with 2,000 each), 30,000 deployments (every service in its team's dev, staging and
prod), 60,000 releases (the busy services' 15 deployments with 600 each), 150 base images
with 2,000 versions (10 images with 60 each), 20,000 jobs (1-4 KB logs) and 200,000 audit
entries, with two years of timestamps (`auto_now_add` switched off while seeding).

Prints one JSON line: the ids and names the bench measures, a read token and a session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from deployments.models import BinaryVersion, Deployment, Environment, Release, Service  # noqa: E402
from images.models import BaseImage, ImageVersion, Registry  # noqa: E402
from portal.actors import Actor  # noqa: E402
from portal.auth import token_create  # noqa: E402
from portal.models import AuditEntry, Job, Membership, Team  # noqa: E402

BATCH = 2000
START = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=730)
MANIFEST = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
    "  labels: {{app: {name}, release: '{number}'}}\nspec:\n  replicas: 2\n  template:\n"
    "    spec:\n      containers:\n      - name: app\n        image: {image}\n"
    "        command: [/opt/app/application]\n"
    + "".join(f"        # hostPath volume line {i} of the rendered manifest\n" for i in range(60))
)
SCOPES = ["images:read", "services:read", "binaries:read", "deployments:read"]


def _no_auto_now() -> Any:
    """Let the seed write its own history into `created_at`/`updated_at`; returns the undo."""
    changed: list[tuple[Any, bool, bool]] = []
    for model in (
        Team,
        BaseImage,
        ImageVersion,
        Registry,
        Service,
        BinaryVersion,
        Environment,
        Deployment,
        Release,
        Job,
        AuditEntry,
    ):
        for field in model._meta.fields:
            if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
                changed.append((field, field.auto_now_add, field.auto_now))
                field.auto_now_add = field.auto_now = False

    def undo() -> None:
        for field, add, now in changed:
            field.auto_now_add, field.auto_now = add, now

    return undo


def _at(i: int, n: int) -> dt.datetime:
    return START + SPAN * (i / max(n, 1))


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def seed(scale: float) -> dict[str, Any]:  # noqa: C901 - one straight pass over the tables
    undo_auto_now = _no_auto_now()
    counts: dict[str, int] = {}
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    n_teams = max(4, round(300 * scale))
    teams = Team.objects.bulk_create(
        Team(name=f"team-{i:03}", is_platform=i < 2, created_at=_at(i, n_teams))
        for i in range(n_teams)
    )
    platform, service_teams = teams[0], teams[2:]
    admin = get_user_model().objects.create_user(username="bench-admin")
    Membership.objects.create(team=platform, user=admin, role="platform-admin")
    registry = Registry.objects.create(
        name="harbor", url="https://harbor.example.com", is_default=True, created_at=START
    )

    # Base images: 10 (1 at 0.1) busy ones with 60 versions each, the rest share the rest.
    n_images = max(5, round(150 * scale))
    n_busy_images = max(1, round(10 * scale))
    images = BaseImage.objects.bulk_create(
        BaseImage(
            name=f"{'runtime' if i % 2 == 0 else 'build'}/debian-{i:03}",
            kind="runtime" if i % 2 == 0 else "build",
            os_family="debian",
            os_version="12",
            owner_team=platform,
            registry=registry,
            status="approved",
            description="Debian 12 with the company's CA bundle and time zone. " * 4,
            created_at=_at(i, n_images),
            updated_at=_at(i, n_images),
        )
        for i in range(n_images)
    )
    n_versions = round(2000 * scale)
    per_image = [60] * n_busy_images + _spread(
        max(n_versions - 60 * n_busy_images, n_images - n_busy_images), n_images - n_busy_images
    )
    versions: list[ImageVersion] = []
    for index, (image, n) in enumerate(zip(images, per_image, strict=True)):
        for v in range(n):
            newest = v == n - 1
            versions.append(
                ImageVersion(
                    base_image=image,
                    tag=f"12.{v}",
                    tags=[f"12.{v}"] + (["12"] if newest else []),
                    digest="sha256:" + hashlib.sha256(f"{index}/{v}".encode()).hexdigest(),
                    registry=registry,
                    recipe="FROM debian:12\nRUN apt-get update\n" * 40,
                    size=30_000_000,
                    arch="amd64",
                    state="approved" if newest else "superseded",
                    scan_state="clean",
                    scan_summary={"critical": 0, "high": v % 3, "fixable": v % 2},
                    created_at=_at(v, n) - dt.timedelta(minutes=index),
                    updated_at=_at(v, n),
                )
            )
    ImageVersion.objects.bulk_create(versions, batch_size=BATCH)
    runtime = ImageVersion.objects.filter(base_image=images[0], state="approved").get()
    counts.update(teams=n_teams, base_images=n_images, image_versions=len(versions))
    done("images")

    n_services = max(10, round(10_000 * scale))
    services = Service.objects.bulk_create(
        (
            Service(
                name=f"svc-{i:05}",
                team=service_teams[i % len(service_teams)],
                language="c",
                description="A service of the company.",
                created_at=_at(i, n_services),
            )
            for i in range(n_services)
        ),
        batch_size=BATCH,
    )
    busy = services[:5]
    n_binaries = round(100_000 * scale)
    busy_versions = round(2000 * scale)
    per_service = [busy_versions] * 5 + _spread(
        max(n_binaries - 5 * busy_versions, n_services - 5), n_services - 5
    )
    newest: dict[int, BinaryVersion] = {}

    def binaries() -> Any:
        made = 0
        for service, n in zip(services, per_service, strict=True):
            for v in range(n):
                made += 1
                sha = hashlib.sha256(f"{service.name}/{v}".encode()).hexdigest()
                row = BinaryVersion(
                    service=service,
                    version=f"1.{v}.0",
                    arch="x86_64",
                    filename="application",
                    file=f"binaries/sha256/{sha[:2]}/{sha}",
                    sha256=sha,
                    size=4_000_000 + v,
                    file_type="elf",
                    linkage="dynamic",
                    interpreter="/lib64/ld-linux-x86-64.so.2",
                    needed=["libc.so.6", "libpthread.so.0"],
                    min_glibc="2.34",
                    libc="glibc",
                    machine="x86_64",
                    elf_class="ELF64",
                    state="active" if v >= n - 10 else ("yanked" if v % 10 == 0 else "purged"),
                    created_at=_at(v, n) + dt.timedelta(seconds=service.pk % 3600),
                )
                newest[service.pk] = row
                yield row

    _bulk(BinaryVersion, binaries())
    counts["services"], counts["binary_versions"] = n_services, sum(per_service)
    done("binaries")

    environments: dict[int, list[Environment]] = {}
    rows = []
    for team in service_teams:
        for stage in ("dev", "staging", "prod"):
            rows.append(
                Environment(
                    name=f"{team.name}-{stage}",
                    namespace=f"{team.name}-{stage}",
                    k8s_version="1.33",
                    delivery_strategy="hostPath",
                    created_at=START,
                )
            )
    for env in Environment.objects.bulk_create(rows, batch_size=BATCH):
        environments.setdefault(int(env.name.split("-")[1]), []).append(env)
    deployments: list[Deployment] = []
    for i, service in enumerate(services):
        for env in environments[int(service.team.name.split("-")[1])]:
            deployments.append(
                Deployment(
                    service=service,
                    environment=env,
                    mode="volume" if i % 10 else "image",
                    runtime_version=runtime,
                    binary_version=newest[service.pk],
                    args=[],
                    env=[{"name": "TZ", "value": "Asia/Shanghai"}],
                    ports=[8080],
                    resources={"cpu_request": "100m", "memory_request": "128Mi"},
                    created_at=_at(i, n_services),
                    updated_at=_at(i, n_services),
                )
            )
    Deployment.objects.bulk_create(deployments, batch_size=BATCH)
    counts["environments"], counts["deployments"] = len(rows), len(deployments)
    done("deployments")

    busy_ids = {s.pk for s in busy}
    heavy = [d for d in deployments if d.service_id in busy_ids]
    light = [d for d in deployments if d.service_id not in busy_ids]
    n_releases = round(60_000 * scale)
    per_heavy = round(600 * scale)
    per_light = _spread(max(n_releases - per_heavy * len(heavy), len(light)), len(light))

    def releases() -> Any:
        for deployment, n in [(d, per_heavy) for d in heavy] + list(
            zip(light, per_light, strict=True)
        ):
            binary = newest[deployment.service_id]
            for number in range(1, n + 1):
                text = MANIFEST.format(
                    name=deployment.service.name,
                    ns=deployment.environment.namespace,
                    number=number,
                    image=runtime.digest,
                )
                yield Release(
                    deployment=deployment,
                    number=number,
                    strategy="hostPath",
                    binary_version=binary,
                    runtime_version=runtime,
                    binary_sha256=binary.sha256,
                    base_digest=runtime.digest,
                    manifest_yaml=text,
                    manifest_sha256=hashlib.sha256(text.encode()).hexdigest(),
                    k8s_version="1.33",
                    validation={"ok": True},
                    created_by=admin,
                    created_at=_at(number, n) + dt.timedelta(seconds=deployment.pk % 3600),
                )

    counts["releases"] = _bulk(Release, releases())
    done("releases")

    n_jobs = round(20_000 * scale)
    log = "".join(f"step {i}: compiling and linking the image layer\n" for i in range(60))
    counts["jobs"] = _bulk(
        Job,
        (
            Job(
                kind=("images.build", "images.scan", "deployments.artifact_push")[i % 3],
                state="succeeded",
                progress=100,
                step="done",
                attempts=1,
                log=log[: 1000 + (i % 4) * 700],
                team=service_teams[i % len(service_teams)],
                created_at=_at(i, n_jobs),
                started_at=_at(i, n_jobs),
                finished_at=_at(i, n_jobs),
            )
            for i in range(n_jobs)
        ),
    )
    n_audit = round(200_000 * scale)
    counts["audit_entries"] = _bulk(
        AuditEntry,
        (
            AuditEntry(
                actor_repr=f"user-{i % 3000}",
                action=("service.create", "binary.upload", "deployment.create", "release.create")[
                    i % 4
                ],
                object_id=str(i),
                object_repr=f"svc-{i % n_services:05}",
                after={"version": f"1.{i % 97}.0"},
                created_at=_at(i, n_audit),
            )
            for i in range(n_audit)
        ),
    )
    done("jobs_and_audit")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    done("vacuum_analyze")

    undo_auto_now()
    _, secret = token_create(team=platform, name="bench", scopes=SCOPES, actor=Actor(user=admin))
    client = Client()
    client.force_login(admin)
    heavy_deployment = heavy[0]
    busiest = busy[0]
    middle = Release.objects.filter(deployment__in=heavy[:1]).order_by("-number")[per_heavy // 2]
    deep_release = Release.objects.order_by("-deployment_id", "-number").values(
        "deployment_id", "number"
    )[n_releases // 2]
    deep_binary = (
        BinaryVersion.objects.filter(service=busiest)
        .order_by("-created_at", "-id")
        .values("created_at", "id")[busy_versions // 2]
    )
    deep_audit = AuditEntry.objects.order_by("-created_at", "-id").values("created_at", "id")[
        n_audit // 2
    ]
    return {
        "counts": counts,
        "seed_seconds": timings,
        "token": secret,
        "session": client.cookies["sessionid"].value,
        "big_image": {"id": images[0].pk, "name": images[0].name, "tag": runtime.tag},
        "small_image": images[-1].pk,
        "busy_service": busiest.name,
        "light_service": services[-1].name,
        "heavy_deployment": heavy_deployment.pk,
        "light_deployment": light[-1].pk,
        "release": middle.pk,
        "deep_release": [deep_release["deployment_id"], deep_release["number"]],
        "deep_binary": [deep_binary["created_at"].isoformat(), deep_binary["id"]],
        "deep_audit": [deep_audit["created_at"].isoformat(), deep_audit["id"]],
        "deep_heavy_release": [middle.number],
    }


def _bulk(model: Any, rows: Any) -> int:
    batch: list[Any] = []
    total = 0
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            model.objects.bulk_create(batch)
            total += len(batch)
            batch = []
    if batch:
        model.objects.bulk_create(batch)
        total += len(batch)
    return total


if __name__ == "__main__":
    print(json.dumps(seed(float(sys.argv[1]))))
