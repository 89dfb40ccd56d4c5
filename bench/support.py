"""Helpers shared by the benchmarks and the test fixtures that start servers.

The benchmarks run as scripts (`.venv/bin/python bench/upload.py`), so they import this module
as `support` (their own directory is first on `sys.path`); the tests import `bench.support`.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    """p50, p95 and max milliseconds of `runs` calls of `fn`, after one warm-up call (plans
    cached, pages in memory)."""
    samples = []
    fn()
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[max(int(len(samples) * 0.95) - 1, 0)], 2),
        "max_ms": round(samples[-1], 2),
    }


def timed_interleaved(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, dict[str, float]]:
    """`timed` for several functions whose ratio matters, their calls taken in turn (one of
    each per round, after a warm-up call of each): on a shared machine, load that comes and
    goes then weighs on all of them alike instead of on whichever ran during it."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1000)
    result = {}
    for name, values in samples.items():
        values.sort()
        result[name] = {
            "p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(values[max(int(len(values) * 0.95) - 1, 0)], 2),
            "max_ms": round(values[-1], 2),
        }
    return result


def measure_tenth_and_full(
    measure: Callable[[int], dict[str, Any]], size: int, *, smallest: int, keep: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`measure(size // 10)` then `measure(size)` in the test twin of DATABASE_URL's database
    (created, flushed between the two, dropped at the end unless `keep`)."""
    from django.core.management import call_command
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, keepdb=keep, serialize=False)
    try:
        tenth = measure(max(size // 10, smallest))
        call_command("flush", interactive=False, verbosity=0)
        full = measure(size)
    finally:
        if not keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    return tenth, full
