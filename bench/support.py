"""Helpers shared by the benchmarks and the test fixtures that start servers.

The benchmarks run as scripts (`.venv/bin/python bench/upload.py`), so they import this module
as `support` (their own directory is first on `sys.path`); the tests import `bench.support`.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
