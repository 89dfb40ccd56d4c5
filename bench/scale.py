"""Benchmark: every list and detail endpoint at company size, against a bare view, flat in n.

Seeds the data set of `scale_seed.py` (at `--scale 1`: 300 teams, 10,000 services, 100,000
binary versions, 30,000 deployments, 60,000 releases, 2,000 image versions, 20,000 jobs,
200,000 audit entries) with `bulk_create` into two PostgreSQL databases of its own on the
server `DATABASE_URL` names — `bench_scale_full` at `--scale` and `bench_scale_tenth` at a
tenth of it (`--db-prefix` renames them) — migrated fresh (`--reuse` keeps databases a
previous run seeded at the same scale). Both are served at once by gunicorn (`-w 2` sync
workers, DEBUG=0, the default persistent connections) on free ports through `scale_app.py`:
the portal plus the floor, a bare `JsonResponse(values())` of 50 catalog rows through the
same middleware (and, reported beside the endpoints, the same rows through DRF and the
portal's layout alone for a logged-in user: what an API call and a page cost before they
do anything of their own).

Each endpoint is loaded at concurrency 4 (threads + http.client) for `--seconds`, right
after a `--floor-seconds` round of the floor on the same server, in `--rounds` rounds that
alternate the two databases; `ratio` is the endpoint's req/s over the adjacent floor's. The
API calls carry a platform-team read token, the pages a platform admin's session. Deep pages
start from a cursor (or page number) half-way down the list.

Targets: the catalog list and resolve >= 0.5 of the floor, every other list >= 0.3; p50 at
full scale <= 1.3 x p50 at a tenth (flat); gunicorn worker RSS after the run < 250 MB; no
error responses. Prints the table on stderr and JSON on stdout; exit status 1 when a target
is missed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/scale.py [--scale 1] [--rounds 2] [--seconds 3] [--reuse] \\
        [--only REGEX]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import free_port

BASE = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
FLOOR = "/bench/floor/"
TARGET_CATALOG = 0.5
TARGET_LIST = 0.3
TARGET_GROWTH = 1.3
TARGET_RSS_MB = 250


COLLECT = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()
from django.conf import settings
from django.core.management import call_command
settings.STORAGES["staticfiles"]["BACKEND"] = (
    "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
)
call_command("collectstatic", interactive=False, verbosity=0)
"""


@dataclass
class Endpoint:
    name: str
    path: str
    auth: str  # "token" or "session"
    target: float | None  # ratio to the floor; None: a detail, reported only


def cursor(keys: list[Any]) -> str:
    """A forward cursor as `portal.keyset` encodes it."""
    raw = json.dumps({"k": keys, "r": False}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def endpoints(info: dict[str, Any]) -> list[Endpoint]:
    big = info["big_image"]
    ref = urllib.parse.quote(f"{big['name']}:{big['tag']}")
    busy, heavy = info["busy_service"], info["heavy_deployment"]
    middle_page = max(1, info["counts"]["services"] // 100)
    return [
        Endpoint("floor through DRF + token", "/bench/floor-drf/", "token", None),
        Endpoint(
            "catalog list (10/page)", "/api/v1/base-images/?page_size=10", "token", TARGET_CATALOG
        ),
        Endpoint("resolve name:tag", f"/api/v1/base-images/resolve/?ref={ref}", "token", 0.5),
        Endpoint(
            "base-image detail (60 versions)", f"/api/v1/base-images/{big['id']}/", "token", None
        ),
        Endpoint(
            "image-versions list", "/api/v1/image-versions/?page_size=50", "token", TARGET_LIST
        ),
        Endpoint("services list p1", "/api/v1/services/?page_size=50", "token", TARGET_LIST),
        Endpoint(
            "services list middle page",
            f"/api/v1/services/?page_size=50&page={middle_page}",
            "token",
            TARGET_LIST,
        ),
        Endpoint("service detail", f"/api/v1/services/{busy}/", "token", None),
        Endpoint(
            "service binaries p1",
            f"/api/v1/services/{busy}/binaries/?page_size=50",
            "token",
            TARGET_LIST,
        ),
        Endpoint(
            "service binaries deep",
            f"/api/v1/services/{busy}/binaries/?page_size=50&cursor={cursor(info['deep_binary'])}",
            "token",
            TARGET_LIST,
        ),
        Endpoint("binaries list", "/api/v1/binaries/?page_size=50", "token", TARGET_LIST),
        Endpoint("deployments list", "/api/v1/deployments/?page_size=50", "token", TARGET_LIST),
        Endpoint("environments list", "/api/v1/environments/?page_size=50", "token", TARGET_LIST),
        Endpoint("releases list p1", "/api/v1/releases/?page_size=50", "token", TARGET_LIST),
        Endpoint(
            "releases list deep",
            f"/api/v1/releases/?page_size=50&cursor={cursor([info['deep_release_id']])}",
            "token",
            TARGET_LIST,
        ),
        Endpoint(
            "deployment releases (busiest)",
            f"/api/v1/deployments/{heavy}/releases/?page_size=50",
            "token",
            TARGET_LIST,
        ),
        Endpoint(
            "release manifest.yaml",
            f"/api/v1/releases/{info['release']}/manifest.yaml",
            "token",
            None,
        ),
        Endpoint("jobs list", "/api/v1/jobs/?page_size=50", "token", TARGET_LIST),
        Endpoint("UI floor: the layout alone", "/bench/floor-page/", "session", None),
        Endpoint("UI catalog (10/page)", "/base-images/?page_size=10", "session", TARGET_LIST),
        Endpoint("UI base image (60 versions)", f"/base-images/{big['id']}/", "session", None),
        Endpoint("UI services", "/services/", "session", TARGET_LIST),
        Endpoint("UI service (busiest)", f"/services/{busy}/", "session", TARGET_LIST),
        Endpoint("UI deployment (busiest)", f"/deployments/{heavy}/", "session", TARGET_LIST),
        Endpoint(
            "UI deployment history deep",
            f"/deployments/{heavy}/?cursor={cursor(info['deep_heavy_release'])}",
            "session",
            TARGET_LIST,
        ),
        Endpoint("UI jobs", "/jobs/", "session", TARGET_LIST),
        Endpoint("UI audit", "/audit/", "session", TARGET_LIST),
        Endpoint(
            "UI audit deep", f"/audit/?cursor={cursor(info['deep_audit'])}", "session", TARGET_LIST
        ),
    ]


# --- databases and servers -----------------------------------------------------------------


def _db_url(base: str, name: str) -> str:
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def _psql(base: str, sql: str) -> str:
    import psycopg2

    conn = psycopg2.connect(_db_url(base, "postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return str(cur.fetchone()[0]) if cur.description else ""
    finally:
        conn.close()


def prepare(base: str, name: str, scale: float, env: dict[str, str], reuse: bool) -> dict:
    """A migrated, seeded database `name`; its seed info (kept in a table for `--reuse`)."""
    url = _db_url(base, name)
    dbenv = {**env, "DATABASE_URL": url}
    # `name` is one of the bench's two database names (a checked prefix), never free input.
    exists = _psql(base, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "1"  # noqa: S608
    if reuse and exists:
        import psycopg2

        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT info FROM bench_scale_info WHERE scale = %s", [scale])
                row = cur.fetchone()
        except psycopg2.Error:
            row = None
        finally:
            conn.close()
        if row:
            info = json.loads(row[0])
            info["reused"] = True
            return _with_ids(url, info)
    if exists:
        _psql(base, f'DROP DATABASE "{name}" WITH (FORCE)')
    _psql(base, f'CREATE DATABASE "{name}"')
    start = time.perf_counter()
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=BASE, env=dbenv, check=True)
    migrate_s = time.perf_counter() - start
    start = time.perf_counter()
    out = subprocess.run(
        [PYTHON, str(BASE / "bench" / "scale_seed.py"), str(scale)],
        cwd=BASE,
        env=dbenv,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    info = json.loads(out.strip().splitlines()[-1])
    info["seed_wall_seconds"] = round(time.perf_counter() - start, 1)
    info["migrate_seconds"] = round(migrate_s, 1)
    import psycopg2

    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE bench_scale_info (scale float PRIMARY KEY, info text)")
        cur.execute("INSERT INTO bench_scale_info VALUES (%s, %s)", [scale, json.dumps(info)])
    conn.close()
    info["db_size"] = _psql(base, f"SELECT pg_size_pretty(pg_database_size('{name}'))")
    return _with_ids(url, info)


def _with_ids(url: str, info: dict[str, Any]) -> dict[str, Any]:
    """The id of the release half-way down the list (the releases API pages by id)."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM deployments_release ORDER BY id DESC OFFSET %s LIMIT 1",
                [info["counts"]["releases"] // 2],
            )
            info["deep_release_id"] = cur.fetchone()[0]
    finally:
        conn.close()
    return info


class Server:
    """gunicorn serving `scale_app` on a free port."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                GUNICORN,
                "scale_app:application",
                "--pythonpath",
                f"{BASE / 'bench'},{BASE}",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--timeout",
                "120",
            ],
            cwd=BASE,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = request(self.port, FLOOR, {})
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("gunicorn did not answer in 60 s")

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def cpu_ticks(self) -> int:
        total = 0
        for pid in self.workers():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total

    def memory(self) -> list[dict[str, float]]:
        rows = []
        for pid in self.workers():
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
            rows.append(
                {
                    "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
                    "peak_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1),
                }
            )
        return rows

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- load ----------------------------------------------------------------------------------


def request(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def load(
    server: Server, path: str, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status, body = request(server.port, path, headers)
            except OSError as exc:
                status, body = 0, str(exc).encode()
            took = time.perf_counter() - start
            with lock:
                if status == 200:
                    latencies.append(took)
                    sizes.append(len(body))
                else:
                    errors.append(f"{status} {body[:200]!r}")

    ticks = server.cpu_ticks()
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    cpu_s = (server.cpu_ticks() - ticks) / os.sysconf("SC_CLK_TCK")
    n = len(latencies)
    return {
        "n": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "rps": n / wall if wall else 0.0,
        "latencies": latencies,
        "cpu_ms_per_req": 1000 * cpu_s / max(n, 1),
        "body_kb": (statistics.mean(sizes) / 1024) if sizes else 0.0,
    }


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    servers: dict[str, Server],
    infos: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, dict[str, Any]]:
    only = re.compile(args.only) if args.only else None
    plans = {
        tag: [ep for ep in endpoints(info) if only is None or only.search(ep.name)]
        for tag, info in infos.items()
    }
    auth = {
        tag: {
            "token": {"Authorization": f"Bearer {info['token']}", "Host": "127.0.0.1"},
            "session": {"Cookie": f"sessionid={info['session']}", "Host": "127.0.0.1"},
        }
        for tag, info in infos.items()
    }
    raw: dict[str, dict[str, dict[str, list[Any]]]] = {}
    # warm-up: every endpoint a few times on both servers (connections, imports, caches)
    for tag, plan in plans.items():
        for ep in plan:
            for _ in range(3):
                status, body = request(servers[tag].port, ep.path, auth[tag][ep.auth])
                if status != 200:
                    raise RuntimeError(f"{tag} {ep.name} {ep.path}: {status} {body[:300]!r}")
    for _round in range(args.rounds):
        for index in range(len(plans["full"])):
            for tag in ("full", "tenth"):
                ep = plans[tag][index]
                server = servers[tag]
                floor = load(server, FLOOR, {"Host": "127.0.0.1"}, args.floor_seconds, 4)
                got = load(server, ep.path, auth[tag][ep.auth], args.seconds, 4)
                slot = raw.setdefault(ep.name, {}).setdefault(
                    tag, {"runs": [], "floors": [], "path": ep.path, "target": ep.target}
                )
                slot["runs"].append(got)
                slot["floors"].append(floor)
                print(
                    f"  {tag:5} {ep.name:34} {got['rps']:7.1f} req/s (floor {floor['rps']:6.1f})",
                    file=sys.stderr,
                )
    results: dict[str, dict[str, Any]] = {}
    for name, by_tag in raw.items():
        row: dict[str, Any] = {"target_ratio": by_tag["full"]["target"]}
        for tag, slot in by_tag.items():
            lat = [x for run in slot["runs"] for x in run["latencies"]]
            ratios = [
                run["rps"] / floor["rps"] if floor["rps"] else 0.0
                for run, floor in zip(slot["runs"], slot["floors"], strict=True)
            ]
            row[tag] = {
                "path": slot["path"],
                "requests": sum(r["n"] for r in slot["runs"]),
                "errors": sum(r["errors"] for r in slot["runs"]),
                "first_error": next((r["first_error"] for r in slot["runs"] if r["errors"]), None),
                "p50_ms": round(1000 * _pct(lat, 0.5), 1),
                "p95_ms": round(1000 * _pct(lat, 0.95), 1),
                "rps": round(statistics.mean(r["rps"] for r in slot["runs"]), 1),
                "floor_rps": round(statistics.mean(f["rps"] for f in slot["floors"]), 1),
                "floor_p50_ms": round(
                    1000 * _pct([x for f in slot["floors"] for x in f["latencies"]], 0.5), 1
                ),
                "ratio": round(statistics.mean(ratios), 3),
                "cpu_ms_per_req": round(
                    statistics.mean(r["cpu_ms_per_req"] for r in slot["runs"]), 1
                ),
                "floor_cpu_ms_per_req": round(
                    statistics.mean(f["cpu_ms_per_req"] for f in slot["floors"]), 1
                ),
                "body_kb": round(statistics.mean(r["body_kb"] for r in slot["runs"]), 1),
            }
        row["growth_p50"] = round(row["full"]["p50_ms"] / max(row["tenth"]["p50_ms"], 0.1), 2)
        target = row["target_ratio"]
        row["meets_ratio"] = target is None or row["full"]["ratio"] >= target
        row["meets_growth"] = row["growth_p50"] <= TARGET_GROWTH
        results[name] = row
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (
        f"{'endpoint':36} {'p50':>7} {'p95':>7} {'req/s':>7} {'ratio':>6} {'target':>6} "
        f"{'cpu ms':>7} {'KB':>6} {'p50 1/10':>8} {'growth':>6}"
    )
    lines = [head, "-" * len(head)]
    for name, row in results.items():
        full, tenth = row["full"], row["tenth"]
        target = "" if row["target_ratio"] is None else f"{row['target_ratio']:.1f}"
        flag = "" if row["meets_ratio"] and row["meets_growth"] else "  <-- miss"
        lines.append(
            f"{name:36} {full['p50_ms']:7.1f} {full['p95_ms']:7.1f} {full['rps']:7.1f} "
            f"{full['ratio']:6.2f} {target:>6} {full['cpu_ms_per_req']:7.1f} "
            f"{full['body_kb']:6.1f} {tenth['p50_ms']:8.1f} {row['growth_p50']:6.2f}{flag}"
        )
    floor_cpu = [row["full"]["floor_cpu_ms_per_req"] for row in results.values()]
    lines.append(
        f"(the floor's own worker CPU: {statistics.median(floor_cpu):.1f} ms a request, median"
        " over its rounds; `cpu ms` is the endpoint's)"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1 = the company data set")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="load per endpoint round")
    parser.add_argument("--floor-seconds", type=float, default=1.5)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--reuse", action="store_true", help="keep databases seeded before")
    parser.add_argument("--keep", action="store_true", help="do not drop the databases")
    parser.add_argument(
        "--only", default="", help="measure only the endpoints whose name matches this regex"
    )
    parser.add_argument(
        "--db-prefix", default="bench_scale", help="the two databases' names: PREFIX_full, _tenth"
    )
    args = parser.parse_args()
    try:
        re.compile(args.only)
    except re.error as exc:
        parser.error(f"--only {args.only!r} is not a regular expression: {exc}")
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        print("Set DATABASE_URL to a PostgreSQL server (the bench makes its own databases).")
        return 2
    var = Path(tempfile.gettempdir()) / "bench-scale-var"
    var.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DEBUG": "0",
        # One key for seeding and serving (the session is signed with it), stable across runs
        # so that `--reuse` keeps a working session; a throwaway bench database only.
        "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY")
        or hashlib.sha256(b"bench/scale.py " + str(BASE).encode()).hexdigest(),
        "ALLOWED_HOSTS": "127.0.0.1,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "PORTAL_VAR_DIR": str(var),
        "AXES_ENABLED": "0",
    }
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", args.db_prefix):
        print("--db-prefix: lower-case letters, digits and underscores only.")
        return 2
    names = {tag: f"{args.db_prefix}_{tag}" for tag in ("full", "tenth")}
    scales = {"full": args.scale, "tenth": args.scale / 10}
    started = time.perf_counter()
    infos = {
        tag: prepare(base, names[tag], scales[tag], env, args.reuse) for tag in ("tenth", "full")
    }
    seeded_s = time.perf_counter() - started
    # DEBUG=0 serves the manifest-hashed static files, as in production: collected with the
    # plain manifest storage (the same staticfiles.json; whitenoise's gzip/brotli pass over
    # the API-docs bundles takes minutes on a shared machine and no page here needs it).
    if not (var / "static" / "staticfiles.json").exists():
        subprocess.run([PYTHON, "-c", COLLECT], cwd=BASE, env=env, check=True)
    servers: dict[str, Server] = {}
    try:
        for tag in ("full", "tenth"):
            servers[tag] = Server({**env, "DATABASE_URL": _db_url(base, names[tag])}, args.workers)
        results = measure(servers, infos, args)
        memory = {tag: server.memory() for tag, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        if not args.keep and not args.reuse:
            for name in names.values():
                _psql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    rss_after = max(m["rss_mb"] for m in memory["full"])
    errors = sum(r[t]["errors"] for r in results.values() for t in ("full", "tenth"))
    misses = {
        "ratio": [n for n, r in results.items() if not r["meets_ratio"]],
        "growth": [n for n, r in results.items() if not r["meets_growth"]],
    }
    ok = not misses["ratio"] and not misses["growth"] and rss_after < TARGET_RSS_MB and not errors
    report = {
        "benchmark": "scale",
        "scale": args.scale,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "settings": {
            "gunicorn_workers": args.workers,
            "concurrency": 4,
            "rounds": args.rounds,
            "seconds": args.seconds,
            "floor_seconds": args.floor_seconds,
        },
        "data": {tag: info["counts"] for tag, info in infos.items()},
        "seed": {
            tag: {
                k: info.get(k) for k in ("seed_seconds", "seed_wall_seconds", "db_size", "reused")
            }
            for tag, info in infos.items()
        },
        "prepare_seconds": round(seeded_s, 1),
        "endpoints": results,
        "worker_memory_after_run": memory,
        "targets": {
            "catalog_and_resolve_ratio": TARGET_CATALOG,
            "list_ratio": TARGET_LIST,
            "growth_p50": TARGET_GROWTH,
            "worker_rss_mb": TARGET_RSS_MB,
        },
        "worker_rss_after_mb": rss_after,
        "errors": errors,
        "misses": misses,
        "ok": ok,
    }
    print(table(results), file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
