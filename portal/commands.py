"""Run external commands (buildah, skopeo, mmdebstrap, syft, hadolint) safely.

Pure module, no Django. Every command runs from an argument list (never a shell string) in a
new session, so that its whole process tree can be killed together on timeout or cancel. The
merged stdout/stderr is streamed line by line to a callback *in the calling thread* (so the
callback may use the caller's database connection), and only a bounded tail is kept in memory.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess  # noqa: S404 - argument lists only, never a shell
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

CANCEL_POLL_SECONDS = 0.5
"""How often `should_cancel` is asked."""
KILL_GRACE_SECONDS = 5.0
"""Time between SIGTERM and SIGKILL for the process group."""
ORPHAN_GRACE_SECONDS = 2.0
"""How long leftover children may keep the output pipe open after the command itself exits."""
MAX_LINE_CHARS = 8192
"""Longer lines are cut into pieces of this size (a progress bar without newlines stays bounded)."""
DEFAULT_TAIL_CHARS = 20_000
_QUEUE_LINES = 10_000
_EOF = object()


class CommandNotFound(FileNotFoundError):
    """The program to run does not exist or is not executable."""


@dataclass(frozen=True)
class CommandResult:
    """What a finished command did.

    Attributes:
        returncode: the exit status; negative (-signal) when the command was killed.
        output_tail: the last lines of the merged stdout/stderr.
        duration: wall time in seconds.
        timed_out: the command was killed because it ran past its timeout.
        cancelled: the command was killed because `should_cancel` returned true.
    """

    returncode: int
    output_tail: str
    duration: float
    timed_out: bool
    cancelled: bool

    @property
    def ok(self) -> bool:
        """True when the command ran to the end and exited 0."""
        return self.returncode == 0 and not self.timed_out and not self.cancelled


class _Tail:
    """The last `limit` characters of output, kept as whole lines."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lines: deque[str] = deque()
        self._size = 0

    def append(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        while self._size > self._limit and len(self._lines) > 1:
            self._size -= len(self._lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self._lines)[-self._limit :]


def _validate(argv: Sequence[str], timeout: float, cwd: str | None) -> list[str]:
    if isinstance(argv, str | bytes):
        raise TypeError("argv must be a list of arguments, not a shell string")
    args = list(argv)
    if not args:
        raise ValueError("argv must name a program to run")
    for arg in args:
        if not isinstance(arg, str):
            raise TypeError(f"every argument must be a str, got {type(arg).__name__}: {arg!r}")
        if "\0" in arg:
            raise ValueError(f"argument contains a NUL byte: {arg!r}")
    if not args[0]:
        raise ValueError("argv[0] (the program) is empty")
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if cwd is not None and not os.path.isdir(cwd):
        raise FileNotFoundError(f"working directory does not exist: {cwd}")
    return args


def _read_lines(stream: IO[bytes], lines: queue.Queue[object]) -> None:
    """Reader thread: push decoded lines (bounded length) into `lines`, then `_EOF`."""
    try:
        while True:
            raw = stream.readline(MAX_LINE_CHARS)
            if not raw:
                break
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            # A carriage-return progress bar: keep only its last state.
            text = text.rsplit("\r", 1)[-1]
            lines.put(text)
    finally:
        stream.close()
        lines.put(_EOF)


def _write_input(stream: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        stream.write(data)
    with contextlib.suppress(BrokenPipeError, OSError):
        stream.close()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a reused pgid owned by someone else
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in the group.

    Zombies are left out: in a container whose PID 1 does not reap orphans they would
    otherwise keep the group "alive" until the SIGKILL grace runs out.
    """
    if not _signal_group(pgid, 0):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - no procfs: trust the signal probe
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def kill_process_group(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the process group of `proc`, then SIGKILL whatever is left after `grace` s."""
    pgid = proc.pid
    if not _signal_group(pgid, signal.SIGTERM):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _group_alive(pgid):
            return
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    on_output: Callable[[str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    input_bytes: bytes | None = None,
    tail_chars: int = DEFAULT_TAIL_CHARS,
    kill_grace: float = KILL_GRACE_SECONDS,
) -> CommandResult:
    """Run `argv`, stream its output, and stop it on timeout or cancel.

    Args:
        argv: the program and its arguments (never a shell string).
        timeout: seconds after which the whole process group is killed.
        on_output: called with each output line (stdout and stderr merged), in this thread,
            in the order the command wrote them.
        should_cancel: polled about every 0.5 s; returning true kills the process group.
        env: the complete environment for the command (default: this process's).
        cwd: the working directory.
        input_bytes: written to the command's standard input (default: no input).
        tail_chars: how much of the end of the output to keep in `output_tail`.
        kill_grace: seconds between SIGTERM and SIGKILL.

    Returns:
        The result; a non-zero exit is not an exception, callers decide.

    Raises:
        CommandNotFound: the program does not exist or is not executable.
        ValueError, TypeError: malformed arguments.
    """
    args = _validate(argv, timeout, cwd)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(  # noqa: S603 - an argument list, validated above
            args,
            stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(f"command not found: {args[0]!r} (is it installed?)") from exc
    except PermissionError as exc:
        raise CommandNotFound(f"command is not executable: {args[0]!r}") from exc

    assert proc.stdout is not None  # noqa: S101 - guaranteed by stdout=PIPE
    lines: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_LINES)
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    if input_bytes is not None:
        assert proc.stdin is not None  # noqa: S101 - guaranteed by stdin=PIPE
        threading.Thread(target=_write_input, args=(proc.stdin, input_bytes), daemon=True).start()

    tail = _Tail(max(tail_chars, 1))
    deadline = started + timeout
    next_poll = started
    exited_at: float | None = None
    killed_at = 0.0
    timed_out = cancelled = killed = False
    try:
        while True:
            try:
                item = lines.get(timeout=0.1)
            except queue.Empty:
                item = None
            if item is _EOF:
                break
            if isinstance(item, str):
                tail.append(item)
                if on_output is not None:
                    on_output(item)
            now = time.monotonic()
            if killed:
                if now - killed_at > 2 * kill_grace:
                    break  # something ignores SIGKILL (stuck in the kernel): stop waiting
                continue  # drain what the dying group still writes, until EOF
            if now >= deadline:
                timed_out = True
            elif should_cancel is not None and now >= next_poll:
                next_poll = now + CANCEL_POLL_SECONDS
                cancelled = bool(should_cancel())
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            orphans = exited_at is not None and now - exited_at > ORPHAN_GRACE_SECONDS
            if timed_out or cancelled or orphans:
                # Children that outlive the command would hold the pipe open: end them too.
                kill_process_group(proc, kill_grace)
                killed = True
                killed_at = time.monotonic()
        # Output closed; the command may still be running (it closed stdout itself).
        while proc.poll() is None and not killed:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
            elif should_cancel is not None and now >= next_poll:
                next_poll = now + CANCEL_POLL_SECONDS
                cancelled = bool(should_cancel())
            if timed_out or cancelled:
                kill_process_group(proc, kill_grace)
                killed = True
            else:
                time.sleep(0.1)
        returncode = proc.wait()
        # Whatever the command left behind in its group goes with it.
        if _group_alive(proc.pid):
            _signal_group(proc.pid, signal.SIGKILL)
    except BaseException:
        kill_process_group(proc, kill_grace)
        raise
    finally:
        reader.join(timeout=kill_grace)
    return CommandResult(
        returncode=returncode,
        output_tail=tail.text(),
        duration=time.monotonic() - started,
        timed_out=timed_out,
        cancelled=cancelled,
    )
