"""A real HTTP receiver for webhook tests: `http.server` in a thread, one behaviour per path.

`/ok` answers 200 with a body, `/fail` 500, `/slow` sleeps past the portal's timeout,
`/redirect` answers 302 to `/ok`, `/gone` 404, `/busy` 429. Every request is recorded with its
headers and body.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, slow_seconds: float = 3.0) -> None:
        self.requests: list[Received] = []
        self.slow_seconds = slow_seconds
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                path = self.path.split("?", 1)[0]
                if path == "/slow":
                    time.sleep(receiver.slow_seconds)
                status = {
                    "/ok": 200,
                    "/fail": 500,
                    "/slow": 200,
                    "/redirect": 302,
                    "/gone": 404,
                    "/busy": 429,
                }.get(path, 404)
                payload = (f"answer of {path}: " + "x" * 5000).encode()
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "/ok")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
