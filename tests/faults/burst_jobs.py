"""Job kinds for the fault tests only, one per queue: each run appends
`<job id> <queue> <worker>/<its pool's pid> <attempt>` to the file `params["ledger"]`
(O_APPEND, one write), so a test can count how often every job really ran, and where.

Real workers load it with `celery worker --include tests.faults.burst_jobs`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from portal.jobs import JobContext, job_kind, worker_name

BUILD_KIND = "tests.faults.build"
SCAN_KIND = "tests.faults.scan"
DEFAULT_KIND = "tests.faults.default"


def _run(ctx: JobContext, queue: str) -> dict[str, Any]:
    seconds = max(0.0, min(30.0, float(ctx.params.get("seconds", 0.1))))
    where = f"{worker_name()}/{os.getppid()}"  # a prefork child's parent: the worker's pid
    line = f"{ctx.job.pk} {queue} {where} {ctx.job.attempts}\n".encode()
    fd = os.open(ctx.params["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(min(0.1, seconds))
    return {"worker": worker_name()}


@job_kind(BUILD_KIND, queue="builds", timeout_seconds=300, max_attempts=3, title="Test build")
def fake_build(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, "builds")


@job_kind(SCAN_KIND, queue="scans", timeout_seconds=300, max_attempts=3, title="Test scan")
def fake_scan(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, "scans")


@job_kind(DEFAULT_KIND, timeout_seconds=300, max_attempts=3, title="Test job")
def fake_default(ctx: JobContext) -> dict[str, Any]:
    return _run(ctx, "default")
