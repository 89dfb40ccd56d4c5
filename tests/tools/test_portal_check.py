"""tools/portal-check against a local HTTP server that runs the real policy engine."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from images.policy import DockerfileInputError, ServiceContext, check_dockerfile, to_sarif
from tests.images.test_policy_corpus import load_catalog

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "tools" / "portal-check"
CORPUS = ROOT / "tests" / "images" / "dockerfiles"
TOKEN = "test-token"
CATALOG = load_catalog()
SERVICES = {"edge": ServiceContext("edge", "go", frozenset({"alpine"}))}


class PortalHandler(BaseHTTPRequestHandler):
    """The dockerfile-checks endpoint, reduced to its contract, on the real engine."""

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
        url = urlparse(self.path)
        if url.path != "/api/v1/dockerfile-checks/":
            self._answer(404, {"detail": "Not found.", "code": "not_found"})
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"detail": "Invalid token.", "code": "authentication_failed"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        except ValueError:
            self._answer(400, {"detail": "Malformed JSON.", "code": "parse_error"})
            return
        service = SERVICES.get(body.get("service") or "")
        try:
            result = check_dockerfile(
                body.get("dockerfile", ""),
                catalog=CATALOG,
                service=service,
                today=datetime.date(2025, 6, 1),
            )
        except DockerfileInputError as exc:
            self._answer(exc.status, {"detail": exc.message, "code": "invalid"})
            return
        if url.query == "format=sarif":
            help_base = f"http://{self.headers['Host']}/rules/"
            self._answer(200, to_sarif(result, filename="Dockerfile", help_base=help_base))
        else:
            self._answer(200, result.to_dict())

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet."""


@pytest.fixture(scope="module")
def portal_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PortalHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(
    args: list[str], url: str | None, token: str = TOKEN, cwd: Path = CORPUS
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    if url is not None:
        env["PORTAL_URL"] = url
    env["PORTAL_TOKEN"] = token
    return subprocess.run(
        [sys.executable, str(CLIENT), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_client_is_an_executable_using_only_the_standard_library() -> None:
    assert os.access(CLIENT, os.X_OK)
    text = CLIENT.read_text()
    assert text.startswith("#!/usr/bin/env python3")
    for module in ("images", "requests", "yaml", "django"):
        assert f"import {module}" not in text and f"from {module}" not in text


def test_fail_verdict_prints_compiler_style_and_exits_1(portal_url: str) -> None:
    proc = run(["seed-multistage-builder.Dockerfile"], portal_url)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(
        line.startswith("seed-multistage-builder.Dockerfile:2: fail BIP011 ") for line in lines
    )
    assert any(" warn BIP010 " in line for line in lines)
    assert lines[-1].startswith("seed-multistage-builder.Dockerfile: fail (")
    # Each finding ends with where its rule is explained (the portal's rule reference).
    line = next(x for x in lines if " fail BIP011 " in x)
    assert line.endswith(f" [{portal_url.rstrip('/')}/rules/BIP011/]")
    assert any(x.endswith("[https://github.com/hadolint/hadolint/wiki/DL3008]") for x in lines) or (
        not any(" DL3008 " in x for x in lines)
    )


def test_pass_and_warn_exit_0(portal_url: str) -> None:
    proc = run(["go-multistage-pinned.Dockerfile", "curl-pipe-bash.Dockerfile"], portal_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "go-multistage-pinned.Dockerfile: pass (0 fail, 0 warn, 0 info)" in proc.stdout
    assert "curl-pipe-bash.Dockerfile:2: warn BIP014 " in proc.stdout
    assert "2 Dockerfile(s), 0 failed, 1 with warnings" in proc.stdout


def test_service_is_sent(portal_url: str) -> None:
    without = run(["alpine-with-exception.Dockerfile"], portal_url)
    assert without.returncode == 1 and "BIP004" in without.stdout
    exempt = run(["--service", "edge", "alpine-with-exception.Dockerfile"], portal_url)
    assert exempt.returncode == 0 and "BIP004" not in exempt.stdout


def test_sarif_output(portal_url: str) -> None:
    proc = run(["--format", "sarif", "latest-tag.Dockerfile"], portal_url)
    assert proc.returncode == 1
    log = json.loads(proc.stdout)
    assert log["version"] == "2.1.0"
    result = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "BIP009")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "latest-tag.Dockerfile"
    assert location["region"]["startLine"] == 1
    rule = next(r for r in log["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "BIP009")
    assert rule["helpUri"].endswith("/rules/BIP009/") and rule["helpUri"].startswith("http")


def test_http_errors_exit_2_with_the_server_detail(portal_url: str, tmp_path: Path) -> None:
    bad_token = run(["no-tag.Dockerfile"], portal_url, token="wrong")
    assert bad_token.returncode == 2
    assert "HTTP 401" in bad_token.stderr and "Invalid token." in bad_token.stderr
    empty = tmp_path / "Dockerfile"
    empty.write_text("\n")
    proc = run([str(empty)], portal_url)
    assert proc.returncode == 2 and "HTTP 400" in proc.stderr and "empty" in proc.stderr
    big = tmp_path / "Big.Dockerfile"
    big.write_text("FROM scratch\n" + "#" * 300_000 + "\n")
    proc = run([str(big)], portal_url)
    assert proc.returncode == 2 and "HTTP 413" in proc.stderr
    wrong_path = run(["no-tag.Dockerfile"], portal_url + "/nothing-here")
    assert wrong_path.returncode == 2 and "HTTP 404" in wrong_path.stderr


def test_usage_and_connection_errors_exit_2(tmp_path: Path) -> None:
    assert run(["no-tag.Dockerfile"], None).returncode == 2
    no_url = run(["no-tag.Dockerfile"], None)
    assert "PORTAL_URL is not set" in no_url.stderr
    assert "http://" in run(["no-tag.Dockerfile"], "ftp://x").stderr
    refused = run(["no-tag.Dockerfile"], "http://127.0.0.1:9")
    assert refused.returncode == 2 and "cannot reach" in refused.stderr
    missing = run([str(tmp_path / "nope")], "http://127.0.0.1:9")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    binary = tmp_path / "bin.Dockerfile"
    binary.write_bytes(b"\xff\xfe")
    assert "not UTF-8" in run([str(binary)], "http://127.0.0.1:9").stderr
    assert run([], "http://127.0.0.1:9").returncode == 2  # argparse usage error
    assert run(["--format", "xml", "x"], "http://127.0.0.1:9").returncode == 2
