"""The server floor of the upload benchmark: a bare WSGI app that only reads the request body
from gunicorn's public `wsgi.input` in 1 MiB blocks (no Django, no parsing, no hashing, no disk).

An upload can be no faster than the slower of this and the hash floor, however well it overlaps
reading, hashing and writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BLOCK = 1024 * 1024


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Read the whole body and answer how many bytes came."""
    left = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    seen = 0
    while left > 0:
        block = stream.read(min(BLOCK, left))
        if not block:
            break
        seen += len(block)
        left -= len(block)
    body = str(seen).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
