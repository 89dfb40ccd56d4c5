"""Helpers of the advisory import tests: the fixture roots, zips, a real mirror over HTTP."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "osv" / "import"
GOOD = FIXTURES / "good"


def set_import_roots(settings: Any, tmp_path: Path) -> Path:
    """The fixtures and a scratch root are the allowed import roots; uploads go to tmp."""
    root = tmp_path / "root"
    root.mkdir()
    settings.PORTAL_ADVISORY_IMPORT_ROOTS = [str(FIXTURES), str(root)]
    settings.PORTAL_ADVISORY_UPLOAD_DIR = str(tmp_path / "uploads")
    settings.PORTAL_ADVISORY_MIRRORS = []
    return root


def zip_of(records: dict[str, bytes], path: Path) -> Path:
    """A zip with one entry per name (deflated)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in records.items():
            archive.writestr(name, data)
    return path


def good_records() -> dict[str, bytes]:
    """Every single-record fixture under good/, as OSV's all.zip names them."""
    return {
        f"{p.stem}.json": p.read_bytes()
        for p in sorted(GOOD.rglob("*.json"))
        if not p.read_bytes().lstrip().startswith(b"[")
    }


def generated_records(count: int, *, modified: str = "2024-05-01T00:00:00Z") -> dict[str, bytes]:
    """`count` Debian:12 records with two affected packages and two aliases each."""
    records = {}
    for n in range(count):
        record = {
            "schema_version": "1.6.0",
            "id": f"DEBIAN-CVE-2099-{n:05d}",
            "modified": modified,
            "published": "2024-01-01T00:00:00Z",
            "upstream": [f"CVE-2099-{n:05d}"],
            "related": [f"DSA-{n}-1"],
            "details": "generated",
            "severity": [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}
            ],
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": f"pkg{n % 997}"},
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": f"1.{n}-1"}],
                        }
                    ],
                },
                {
                    "package": {"ecosystem": "Debian:11", "name": f"pkg{n % 997}"},
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": f"1.{n}-0"}],
                        }
                    ],
                },
            ],
        }
        records[f"{record['id']}.json"] = json.dumps(record).encode()
    return records


def lying_zip(path: Path, *, declared: int, real: int) -> Path:
    """A zip whose one entry declares `declared` bytes but inflates to `real` bytes.

    The local header and the central directory both carry the false size (as a crafted bomb
    would); the CRC is that of the real data.
    """
    payload = (
        b'{"id": "BOMB-1", "modified": "2024-01-01T00:00:00Z", "details": "' + (b"A" * real) + b'"}'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BOMB-1.json", payload)
    data = bytearray(buffer.getvalue())
    real_size = len(payload).to_bytes(4, "little")
    fake_size = declared.to_bytes(4, "little")
    # local file header: uncompressed size at offset 22; central directory entry: offset 24
    assert data[22:26] == real_size
    data[22:26] = fake_size
    central = data.rfind(b"PK\x01\x02")
    assert data[central + 24 : central + 28] == real_size
    data[central + 24 : central + 28] = fake_size
    path.write_bytes(bytes(data))
    return path


@dataclass
class Mirror:
    """A real HTTP server on 127.0.0.1 serving `files` (path → bytes); `hits` counts requests."""

    base: str
    files: dict[str, bytes]
    hits: list[str]


@contextmanager
def serve(files: dict[str, bytes], *, redirect: dict[str, str] | None = None) -> Iterator[Mirror]:
    """Serve `files` over HTTP in a thread (no mocks of requests)."""
    hits: list[str] = []
    redirects = redirect or {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            hits.append(self.path)
            if self.path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.end_headers()
                return
            if self.path.endswith("busy.zip"):
                self.send_response(503)
                self.end_headers()
                return
            body = files.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            if not self.path.endswith("nolength.zip"):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Mirror(f"http://127.0.0.1:{server.server_port}", files, hits)
    finally:
        server.shutdown()
        server.server_close()
