"""Benchmark: a bounded mixed load on the whole portal, as CI pipelines and people would put it.

50 concurrent clients (locust's FastHttpUser, closed loop, 50-250 ms think time) for at most
60 s on loopback against gunicorn + PostgreSQL + Redis + a real Celery worker:

* `catalog` — `GET /api/v1/base-images/` (with and without a search), `catalog-detail` — one
  entry with its versions;
* `resolve` — `GET /api/v1/base-images/resolve/?ref=…` of approved, unknown and EOL references
  (what every CI pipeline calls);
* `dockerfile-check` — `POST /api/v1/dockerfile-checks/` with the policy corpus' Dockerfiles
  (hadolint runs on each);
* `upload` — a small binary version (4-64 KiB, multipart) to a service; every upload queues a
  scan job (syft) that the worker runs while the load goes on.

Uploads are paced to the worker: a client uploads only while fewer than `--scan-backlog` scan
jobs (default twice the worker's concurrency) are queued or running (the bench reads the job
table twice a second), and does one of the reads instead otherwise. Unpaced, 50 clients
queue about 6 scans a second against the ~0.5 a second a 2-core machine's syft runs, and the
queue would take minutes to drain after a 45 s load. So the scan work queued never exceeds
what the worker finishes within the bounded drain that follows (`--drain-seconds`, 60 by
default); the wait is reported (`drain`), and scans left queued or running then fail the run.

The database is a fresh PostgreSQL database (dropped and created), migrated and seeded with the
demo catalog plus approved versions; the worker serves every queue. The worker's RSS (its
Celery processes, not the short-lived syft children) is sampled every second: the mean of the
first and of the last 10 s and their difference are reported. Prints JSON: requests, errors
and p50/p95/p99 per operation, request rate, worker and web RSS, uploads made and deferred,
the drain and the jobs' final states; exit status 1 on any request error, any failed job, a
scan not finished within the drain, or worker RSS growth over the target.

    .venv/bin/python bench/load.py [--users 50] [--duration 45] \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_load] \
        [--broker-url redis://127.0.0.1:6379/5] [--scan-backlog 4] [--drain-seconds 60]
"""

from __future__ import annotations

# locust patches the standard library for gevent when imported; do it before anything else.
import gevent.monkey

gevent.monkey.patch_all()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import gevent  # noqa: E402
import psycopg2  # noqa: E402
import requests  # noqa: E402
from locust import FastHttpUser, between, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from support import free_port  # noqa: E402

BASE = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
DOCKERFILES = BASE / "tests" / "images" / "dockerfiles"
MAX_DURATION = 60
TARGET_WORKER_RSS_GROWTH_MB = 32
WINDOW = 10  # seconds at each end of the run compared for RSS growth

SETUP = """
import json
from django.contrib.auth import get_user_model
from deployments.models import Service
from images.demo import seed_demo
from images.models import BaseImage, ImageVersion
from portal.actors import Actor
from portal.auth import token_create
from portal.models import Membership, Team
import hashlib
seed_demo()
n = 0
for image in BaseImage.objects.exclude(os_family="none"):
    for tag in ("1", "2", image.os_version or "latest"):
        n += 1
        ImageVersion.objects.get_or_create(
            base_image=image, tag=tag,
            defaults=dict(tags=[tag], registry=image.registry, size=30_000_000, arch="amd64",
                          state="approved" if image.status == "approved" else "superseded",
                          digest="sha256:" + hashlib.sha256(f"{image}:{tag}".encode()).hexdigest()),
        )
team = Team.objects.get(name="payments")
user = get_user_model().objects.get(username="payments-lead")
services = []
for i in range(10):
    services.append(Service.objects.get_or_create(name=f"load{i}", team=team,
                                                  defaults={"language": "c"})[0].name)
_, secret = token_create(team=team, name="load", actor=Actor(user=user),
                         scopes=["images:read", "dockerfile:check", "binaries:write",
                                 "binaries:read", "services:read"])
images = list(BaseImage.objects.values_list("pk", "name"))
print(json.dumps({"token": secret, "services": services, "images": images}))
"""

SCAN_KIND = "deployments.scan_binary"
BACKLOG_SQL = "SELECT count(*) FROM portal_job WHERE kind = %s AND state IN ('queued', 'running')"

JOBS = """
import json
from django.db.models import Count
from portal.models import Job
print(json.dumps({r["state"]: r["n"] for r in Job.objects.values("state").annotate(n=Count("id"))}))
"""


def database_reset(url: str) -> None:
    """Drop and create the database `url` names (on the same server's `postgres` database)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an odd database name {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    connection = psycopg2.connect(admin)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=BASE,
        env=env,
        check=True,
        timeout=timeout,
        capture_output=True,
        text=True,
    ).stdout


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(c) for c in found]


def python_tree_rss_mb(root: int) -> float:
    """RSS of `root` and its Python children (Celery's pool, gunicorn's workers), in MB."""
    total = rss_kb(root)
    for child in children(root):
        try:
            exe = os.readlink(f"/proc/{child}/exe")
        except OSError:
            continue
        if "python" in Path(exe).name:
            total += rss_kb(child)
    return total / 1024


class ScanBacklog:
    """How many scan jobs are queued or running: read from the job table every half second,
    plus the uploads still in flight (their job is committed before the answer) and those
    answered since the last read. psycopg2 blocks gevent's hub, so a read is atomic here."""

    def __init__(self, database_url: str, limit: int) -> None:
        self.database_url = database_url
        self.limit = limit
        self.in_db = 0
        self.in_flight = 0
        self.since_read = 0
        self.peak = 0
        self.uploads = 0
        self.deferred = 0

    def read(self) -> int:
        connection = psycopg2.connect(self.database_url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(BACKLOG_SQL, (SCAN_KIND,))
                return int(cursor.fetchone()[0])
        finally:
            connection.close()

    def follow(self) -> None:
        while True:
            self.in_db = self.read()
            self.since_read = 0
            self.peak = max(self.peak, self.in_db)  # scan jobs queued or running, as read
            gevent.sleep(0.5)

    def admit(self) -> bool:
        """Whether one more upload (and so one more scan) fits; counts it if so."""
        if self.in_db + self.in_flight + self.since_read >= self.limit:
            self.deferred += 1
            return False
        self.in_flight += 1
        self.uploads += 1
        return True

    def answered(self) -> None:
        """An admitted upload got its answer (its scan job, if any, is in the table now)."""
        self.in_flight -= 1
        self.since_read += 1


def dockerfiles() -> list[str]:
    return [p.read_text() for p in sorted(DOCKERFILES.glob("*.Dockerfile"))]


class Portal(FastHttpUser):
    """One CI pipeline / person: reads the catalog, resolves, checks, uploads."""

    wait_time = between(0.05, 0.25)
    token = ""
    services: list[str] = []
    images: list[tuple[int, str]] = []
    corpus: list[str] = []
    backlog: ScanBacklog | None = None
    counter = itertools.count()
    network_timeout = 120.0
    connection_timeout = 30.0

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.rng = random.Random(id(self))  # noqa: S311 - load mix, not security

    @task(4)
    def catalog(self) -> None:
        params = self.rng.choice(["", "?q=debian", "?kind=runtime", "?status=approved"])
        self.client.get(f"/api/v1/base-images/{params}", headers=self.headers, name="catalog")

    @task(2)
    def catalog_detail(self) -> None:
        pk, _ = self.rng.choice(self.images)
        self.client.get(f"/api/v1/base-images/{pk}/", headers=self.headers, name="catalog-detail")

    @task(6)
    def resolve(self) -> None:
        _, name = self.rng.choice(self.images)
        ref = self.rng.choice([f"{name}:1", f"{name}:2", f"{name}:nosuch", "nosuch/image:1"])
        self.client.get(
            "/api/v1/base-images/resolve/",
            params={"ref": ref},
            headers=self.headers,
            name="resolve",
        )

    @task(3)
    def dockerfile_check(self) -> None:
        self.client.post(
            "/api/v1/dockerfile-checks/",
            json={"dockerfile": self.rng.choice(self.corpus)},
            headers=self.headers,
            name="dockerfile-check",
        )

    @task(1)
    def upload(self) -> None:
        if self.backlog is not None and not self.backlog.admit():
            self.resolve()  # the worker is busy: no more scan work than it can drain
            return
        data = os.urandom(self.rng.randint(4, 64) * 1024)
        number = next(self.counter)
        boundary = f"load{number}x{os.getpid()}"
        fields = {
            "version": f"1.{number}.0",
            "arch": "x86_64",
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="app"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        body += data + f"\r\n--{boundary}--\r\n".encode()
        service = self.services[number % len(self.services)]
        try:
            self.client.post(
                f"/api/v1/services/{service}/binaries/",
                data=body,
                headers={
                    **self.headers,
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                },
                name="upload",
            )
        finally:
            if self.backlog is not None:
                self.backlog.answered()


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=30)
            return
        except (requests.ConnectionError, requests.Timeout):  # workers still importing the app
            time.sleep(0.25)
    raise RuntimeError(f"{url} never answered")


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - fixed argument list
        argv,
        cwd=BASE,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def window_mean(samples: list[tuple[float, float]], lo: float, hi: float) -> float:
    values = [v for t, v in samples if lo <= t < hi]
    return round(sum(values) / len(values), 1) if values else 0.0


def run_load(
    url: str,
    users: int,
    duration: float,
    seeded: dict[str, Any],
    pids: dict[str, int],
    backlog: ScanBacklog,
) -> dict[str, Any]:
    Portal.host = url
    Portal.backlog = backlog
    Portal.token = seeded["token"]
    Portal.services = seeded["services"]
    Portal.images = [tuple(i) for i in seeded["images"]]
    Portal.corpus = dockerfiles()
    environment = Environment(user_classes=[Portal], events=events)
    runner = environment.create_local_runner()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
    started = time.monotonic()

    def sample() -> None:
        while True:
            now = time.monotonic() - started
            for name, pid in pids.items():
                samples[name].append((now, python_tree_rss_mb(pid)))
            gevent.sleep(1)

    sampler = gevent.spawn(sample)
    follower = gevent.spawn(backlog.follow)
    runner.start(users, spawn_rate=users)
    gevent.spawn_later(duration, runner.quit)
    runner.greenlet.join()
    elapsed = time.monotonic() - started
    sampler.kill()
    follower.kill()
    operations = {}
    for (name, _method), entry in sorted(environment.stats.entries.items()):
        operations[name] = {
            "requests": entry.num_requests,
            "errors": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.50),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time or 0, 1),
        }
    errors = [
        {"operation": e.name, "error": str(e.error)[:300], "count": e.occurrences}
        for e in environment.stats.errors.values()
    ]
    total = environment.stats.total
    rss = {
        name: {
            "first_10s_mb": window_mean(values, 0, WINDOW),
            "last_10s_mb": window_mean(values, elapsed - WINDOW, elapsed + 1),
        }
        for name, values in samples.items()
    }
    for values in rss.values():
        values["growth_mb"] = round(values["last_10s_mb"] - values["first_10s_mb"], 1)
    return {
        "seconds": round(elapsed, 1),
        "requests": total.num_requests,
        "errors": total.num_failures,
        "requests_per_second": round(total.num_requests / elapsed, 1),
        "operations": operations,
        "error_samples": errors[:10],
        "rss": rss,
        "uploads": {
            "made": backlog.uploads,
            "deferred_to_the_worker": backlog.deferred,
            "scan_backlog_limit": backlog.limit,
            "scan_backlog_peak": backlog.peak,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=45, help=f"<= {MAX_DURATION} s")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_load"
        ),
    )
    parser.add_argument(
        "--broker-url", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/5")
    )
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--scan-backlog",
        type=int,
        default=0,
        help="scan jobs queued or running above which clients do not upload "
        "(default: 2 x --worker-concurrency)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=60,
        help="how long to wait after the load for the queued scans to finish",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args()
    duration = min(options.duration, MAX_DURATION)

    work = Path(tempfile.mkdtemp(prefix="portal-bench-load-"))
    env = {
        **os.environ,
        "PORTAL_VAR_DIR": str(work / "var"),
        "DATABASE_URL": options.database_url,
        "DATABASE_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": options.broker_url,
        "PORTAL_BINARY_STORAGE": "filesystem",
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
    }
    for key in ("PORTAL_UPLOAD_TEMP_DIR", "PORTAL_BINARY_ROOT", "PORTAL_SBOM_ROOT"):
        env.pop(key, None)
    web = worker = None
    try:
        database_reset(options.database_url)
        manage(env, "migrate", "--noinput", "-v0")
        seeded = json.loads(manage(env, "shell", "-c", SETUP).strip().splitlines()[-1])
        worker = start(
            [
                str(BIN / "celery"),
                "-A",
                "portal",
                "worker",
                "-Q",
                "default,builds,scans",
                "-c",
                str(options.worker_concurrency),
                "-n",
                f"load-{os.getpid()}@%h",
                "-l",
                "WARNING",
            ],
            env,
            work / "worker.log",
        )
        port = free_port()
        web = start(
            [
                str(BIN / "gunicorn"),
                "portal.wsgi:application",
                f"--workers={options.web_workers}",
                f"--threads={options.web_threads}",
                f"--bind=127.0.0.1:{port}",
                "--timeout=120",
                "--backlog=256",
                "--log-level=warning",
            ],
            env,
            work / "web.log",
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz")
        time.sleep(3)  # the worker's pool is up and the web workers have imported the app
        backlog = ScanBacklog(
            options.database_url, options.scan_backlog or 2 * options.worker_concurrency
        )
        result = run_load(
            url, options.users, duration, seeded, {"worker": worker.pid, "web": web.pid}, backlog
        )
        drain_started = time.monotonic()
        left = backlog.read()
        while left and time.monotonic() - drain_started < options.drain_seconds:
            time.sleep(0.5)
            left = backlog.read()
        result["drain"] = {
            "bound_s": options.drain_seconds,
            "waited_s": round(time.monotonic() - drain_started, 1),
            "scans_left": left,
        }
        jobs = json.loads(manage(env, "shell", "-c", JOBS).strip().splitlines()[-1])
        result["jobs"] = jobs
        result["config"] = {
            "users": options.users,
            "duration_s": duration,
            "web": f"gunicorn {options.web_workers} workers x {options.web_threads} threads",
            "worker": f"celery prefork -c {options.worker_concurrency}, all queues",
            "scan_backlog": backlog.limit,
            "database": "postgresql",
            "broker": "redis",
        }
        growth = result["rss"]["worker"]["growth_mb"]
        result["targets"] = {
            "errors": "0",
            "failed_jobs": "0",
            "scans_left_after_drain": "0",
            "worker_rss_growth_mb": f"< {TARGET_WORKER_RSS_GROWTH_MB}",
        }
        ok = (
            result["errors"] == 0
            and not jobs.get("failed")
            and not left
            and not jobs.get("queued")
            and not jobs.get("running")
            and growth < TARGET_WORKER_RSS_GROWTH_MB
        )
        result["ok"] = ok
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    finally:
        stop(web)
        stop(worker)
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
