"""Database restart under a bounded load: a scratch PostgreSQL cluster behind gunicorn and a
worker is stopped for a few seconds and started again. Requests fail for at most ~10 s, then
never a 5xx; every job reaches a final state, none is left `running` without a worker."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import requests

from tests.faults.burst_jobs import DEFAULT_KIND
from tests.faults.conftest import database_url
from tests.faults.scratch_pg import ScratchPostgres
from tests.faults.support import ROOT, free_port, port_open, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

SHELL = "import django, sys; django.setup(); exec(sys.argv[1])"
OUTAGE_SECONDS = 3.0
RECOVERY_BUDGET = 10.0  # requests may fail this long after the database is back

QUEUE_JOBS = """
import sys
from portal.actors import Actor
from portal.jobs import job_create
from tests.faults.burst_jobs import DEFAULT_KIND
for _ in range(6):
    job_create(kind=DEFAULT_KIND, actor=Actor.system_actor("test"),
               params={"ledger": sys.argv[-1], "seconds": 4})
"""


@pytest.fixture
def cluster(transactional_db) -> Iterator[ScratchPostgres]:
    pg = ScratchPostgres()
    try:
        pg.init()
        pg.copy_from(database_url())  # the migrated schema, without running migrate again
        yield pg
    finally:
        pg.remove()


def _env(pg: ScratchPostgres, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": pg.url,
        "DATABASE_CONN_MAX_AGE": "60",
        "DATABASE_CONN_HEALTH_CHECKS": "1",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "JOB_HEARTBEAT_SECONDS": "1",
        "JOB_DB_RETRY_SECONDS": "60",
    }


@pytest.fixture
def web(cluster: ScratchPostgres, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"]
        + ["--threads", "2", "--timeout", "60"],
        cwd=ROOT,
        env=_env(cluster, tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: port_open(port), 60, "gunicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


class Load:
    """Clients calling /healthz (a database round trip) in a loop; each outcome timestamped."""

    def __init__(self, url: str, clients: int = 4) -> None:
        self.url = url
        self.outcomes: list[tuple[float, int]] = []  # (monotonic time, status; 0 = no answer)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                status = session.get(f"{self.url}/healthz", timeout=10).status_code
            except requests.RequestException:
                status = 0
            self.outcomes.append((time.monotonic(), status))
            time.sleep(0.05)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def _job_states(pg: ScratchPostgres) -> dict[int, tuple[str, int]]:
    with psycopg2.connect(pg.url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT id, state, attempts FROM portal_job WHERE kind = %s", [DEFAULT_KIND])
        rows = cursor.fetchall()
    conn.close()
    return {row[0]: (row[1], row[2]) for row in rows}


def test_a_database_restart_under_load(cluster, web, workers, tmp_path):
    ledger = tmp_path / "ledger"
    env = _env(cluster, tmp_path)
    workers.start(
        "default", concurrency=2, **{k: env[k] for k in env if k.startswith(("DATA", "JOB"))}
    )
    queued = subprocess.run(
        [sys.executable, "-c", SHELL, QUEUE_JOBS, str(ledger)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert queued.returncode == 0, queued.stderr
    with Load(web) as load:
        wait_for(lambda: ledger.exists(), 90, "the worker to start a job")
        time.sleep(2)
        assert load.outcomes and all(status == 200 for _, status in load.outcomes)
        down_at = time.monotonic()
        cluster.stop("fast")  # running jobs lose their connection mid-write
        time.sleep(OUTAGE_SECONDS)
        cluster.start()
        up_at = time.monotonic()
        time.sleep(RECOVERY_BUDGET + 5)
    failed = [(t, s) for t, s in load.outcomes if s != 200]
    assert failed, "the restart went unnoticed: is the load really using the database?"
    late = [(round(t - up_at, 1), s) for t, s in failed if t > up_at + RECOVERY_BUDGET]
    assert late == [], f"requests still failing {RECOVERY_BUDGET} s after the restart: {late[:5]}"
    assert all(t >= down_at for t, _ in failed)
    after = [s for t, s in load.outcomes if t > up_at + RECOVERY_BUDGET]
    assert after and set(after) == {200}
    # every job ends, and none is left running without a worker
    wait_for(
        lambda: all(state in {"succeeded", "failed"} for state, _ in _job_states(cluster).values()),
        120,
        "every job to reach a final state",
    )
    states = _job_states(cluster)
    assert len(states) == 6
    assert {state for state, _ in states.values()} == {"succeeded"}, (states, workers.log_text())
    print(
        f"restart: {len(failed)} of {len(load.outcomes)} requests failed, the last "
        f"{max(t for t, _ in failed) - up_at:.1f} s after the database was back; "
        f"job attempts {sorted(a for _, a in states.values())}"
    )
