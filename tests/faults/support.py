"""What the fault tests share: free ports, a scratch redis-server, real Celery workers in their
own process groups, pointing this process's Celery publisher at another broker, waiting."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu.pools
import pytest

from portal.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class ScratchRedis:
    """A redis-server of the test's own on a free port, without persistence: a restart loses
    every message it held, as a broker that crashed without its data would."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port), 20, f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the broker is gone at once, with everything it held."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None


def _drop_connections() -> None:
    """Forget Celery's pooled connections (as after a fork) and kombu's global pools (keyed by
    broker URL), so the next publish connects to the broker the environment names now."""
    celery_app._pool = None
    if "amqp" in celery_app.__dict__:
        celery_app.amqp._producer_pool = None
    kombu.pools.reset()


@contextlib.contextmanager
def publisher_broker(url: str) -> Iterator[None]:
    """Send this process's Celery messages to `url` inside the block (then back).

    Celery reads CELERY_BROKER_URL from the environment before its configuration.
    """
    before = os.environ.get("CELERY_BROKER_URL")
    _drop_connections()
    os.environ["CELERY_BROKER_URL"] = url
    try:
        yield
    finally:
        _drop_connections()
        if before is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = before


class Workers:
    """Real `celery worker` processes, each in its own process group (like separate hosts)."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        logs.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        queues: str,
        *,
        concurrency: int = 1,
        broker: str | None = None,
        include: str = "tests.faults.burst_jobs",
        **env: str,
    ) -> subprocess.Popen[bytes]:
        name = f"w{len(self.procs)}-{queues.replace(',', '+')}"
        full_env = {**os.environ, **self.env, **env}
        if broker:
            full_env["CELERY_BROKER_URL"] = broker
        log = (self.logs / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queues]
            + ["-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip"]
            + ["--without-mingle", "--include", include, "-l", "info"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def log_text(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.logs.glob("*"))
        )


def ledger_runs(ledger: Path) -> list[tuple[int, str, str, int]]:
    """(job id, queue, worker, attempt) for every run the ledger recorded."""
    if not ledger.exists():
        return []
    runs = []
    for line in ledger.read_text().splitlines():
        job_id, queue, worker, attempt = line.split()
        runs.append((int(job_id), queue, worker, int(attempt)))
    return runs
