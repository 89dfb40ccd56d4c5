"""One tool step: run it with the portal's environment, stream its output, classify failure.

Tools run through `portal.commands.run_command`: an argument list, a timeout, output streamed
line by line to the caller's `log`, and the process group killed on cancel or timeout. A
failure becomes a `BuildError` naming the step (`STEP i/n` of buildah) and the exit code; a
registry that cannot be reached becomes `PushUnavailable`/`PullUnavailable` (worth a retry).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from portal.commands import CommandResult, run_command

from .config import BuilderConfig, CancelFn, LogFn
from .errors import BuildCancelled, BuildError, BuildTimeout, PullUnavailable, PushUnavailable

_STEP_RE = re.compile(r"^STEP (\d+)(?:/(\d+))?: (.*)$")
_EXIT_STATUS_RE = re.compile(r"exit status (\d+)")
_UNAVAILABLE_PATTERNS = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "connection reset by peer",
    "server misbehaving",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "429 too many requests",
    "too many requests",
)


_PASSED_ENV = (
    "PATH",
    "HOME",
    "TMPDIR",
    # The site's egress proxy, if any: RUN steps and mmdebstrap download packages through it.
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


def tool_env() -> dict[str, str]:
    """A minimal environment for a tool: PATH, HOME, TMPDIR and proxies of this process.

    Never the worker's whole environment: its database URL, broker URL, secret key and
    registry passwords must not reach buildah, mmdebstrap or a RUN step.
    """
    env = {k: os.environ[k] for k in _PASSED_ENV if os.environ.get(k)}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["LC_ALL"] = "C.UTF-8"  # tool messages in English, parsable
    return env


@contextmanager
def auth_file(config: BuilderConfig, registry_hosts: Iterable[str]) -> Iterator[list[str]]:
    """`--authfile` arguments for credentials, removed afterwards.

    The file is 0600 in a fresh 0700 directory of its own; only pulls and pushes (outside the
    build sandbox) get it, never `buildah bud`.
    """
    hosts = sorted(set(registry_hosts))
    if config.registry_username is None or not hosts:
        yield []
        return
    secret = f"{config.registry_username}:{config.registry_password}".encode()
    entry = {"auth": base64.b64encode(secret).decode()}
    directory = tempfile.mkdtemp(prefix="bip-auth-")  # mkdtemp makes it 0700
    path = Path(directory) / "auth.json"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": dict.fromkeys(hosts, entry)}, handle)
        yield ["--authfile", str(path)]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def tls_flag(config: BuilderConfig) -> str:
    """buildah's `--tls-verify=` flag for `config`."""
    return f"--tls-verify={'true' if config.tls_verify else 'false'}"


def run_tool(
    argv: Sequence[str],
    *,
    action: str,
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None,
    cwd: str | None = None,
    error_class: type[BuildError] = BuildError,
) -> CommandResult:
    """Run one tool step; raise BuildError/BuildCancelled/BuildTimeout when it does not succeed."""
    current_step = ""

    def on_output(line: str) -> None:
        nonlocal current_step
        match = _STEP_RE.match(line)
        if match:
            current_step = line
        log(line)

    result = run_command(
        argv,
        timeout=config.timeout,
        on_output=on_output,
        should_cancel=should_cancel,
        env=tool_env(),
        cwd=cwd,
    )
    where = f"{action}, {current_step}" if current_step else action
    if result.cancelled:
        raise BuildCancelled(f"{where}: cancelled", result.output_tail, step=current_step or action)
    if result.timed_out:
        raise BuildTimeout(
            f"{where}: timed out after {config.timeout:g} s",
            result.output_tail,
            step=current_step or action,
        )
    if result.returncode != 0:
        lowered = result.output_tail.lower()
        reason = next((p for p in _UNAVAILABLE_PATTERNS if p in lowered), "")
        pulling = not current_step or " FROM " in f" {current_step.split(':', 1)[-1]} "
        if error_class is PullUnavailable and not pulling:
            error_class = BuildError  # e.g. a RUN step's own network failure is no retry case
        if error_class in (PushUnavailable, PullUnavailable) and not reason:
            error_class = BuildError
        inner = _EXIT_STATUS_RE.findall(result.output_tail) if current_step else []
        code = int(inner[-1]) if inner else result.returncode
        detail = f"exit code {code}" if inner else f"exit code {result.returncode}"
        last = last_error_line(result.output_tail)
        message = f"{where} failed ({detail})"
        if error_class in (PushUnavailable, PullUnavailable):
            message += f": registry unavailable ({reason})"
        message += f": {last}" if last else ""
        raise error_class(message, result.output_tail, step=current_step or action, returncode=code)
    return result


def last_error_line(output: str) -> str:
    """The most telling line of a failed tool's output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    strong = ("e:", "error", "fatal", "unknown option", "mmdebstrap: error")
    for line in reversed(lines):
        lowered = line.lower()
        if lowered.startswith(strong) or (lowered.startswith("time=") and "error" in lowered):
            return line[:300]
    return lines[-1][:300] if lines else ""
