"""Run external commands (buildah, skopeo, mmdebstrap, syft, hadolint) safely.

Pure module, no Django. Every command runs from an argument list (never a shell string) in a
new session, so that its whole process tree can be killed together on timeout or cancel. The
merged stdout/stderr is streamed line by line to a callback *in the calling thread* (so the
callback may use the caller's database connection), and only a bounded tail is kept in memory.

A command's process group outlives the process that started it when that process is killed
(SIGKILL, OOM): nothing is left to enforce its timeout. Inside `watch_process_groups(...)`
every command reports its `ProcessGroup` when it starts and when it is gone, so that someone
else (the job reaper) can find it and end it with `process_group_end`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import subprocess  # noqa: S404 - argument lists only, never a shell
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import IO, Any

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

logger = logging.getLogger(__name__)


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


# --- process groups that outlive their starter -------------------------------------------------


def this_node() -> str:
    """Where a process id means the same process: this kernel boot and this PID namespace."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # pragma: no cover - no procfs: the host name is all there is
        return f"host:{socket.gethostname()}"
    return f"{boot}/{namespace}"


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), None if no such."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _group_members(pgid: int) -> list[int]:
    """The live (non-zombie) processes whose process group is `pgid` (no signal needed)."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _proc_stat(int(name))
            if fields is not None and len(fields) > 2 and int(fields[2]) == pgid:
                if fields[0] != b"Z":
                    members.append(int(name))
    return members


@dataclass(frozen=True)
class ProcessGroup:
    """A command's process group, recognisable later from another process on the same node.

    Attributes:
        node: `this_node()` where it runs: only there does `pgid` name it.
        host: the host name (for people, and to tell a rebooted host from another host).
        pgid: the process group id (the command's pid: it leads its own session).
        started: the leader's start time in clock ticks after boot, so that a pid reused by
            an unrelated process is never taken for the group.
        program: argv[0], for logs.
    """

    node: str
    host: str
    pgid: int
    started: int
    program: str

    def __post_init__(self) -> None:
        if not isinstance(self.pgid, int) or self.pgid <= 1:
            raise ValueError(f"not a process group a command could lead: {self.pgid!r}")

    @classmethod
    def of(cls, pid: int, program: str) -> ProcessGroup:
        """The group led by `pid` (a command started in its own session), on this node."""
        fields = _proc_stat(pid)
        started = int(fields[19]) if fields is not None and len(fields) > 19 else 0
        return cls(this_node(), socket.gethostname(), pid, started, program)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessGroup:
        """The group `as_dict` described. Raises KeyError, TypeError or ValueError."""
        return cls(
            node=str(data["node"]),
            host=str(data["host"]),
            pgid=int(data["pgid"]),
            started=int(data["started"]),
            program=str(data["program"]),
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able description (what a Job row keeps)."""
        return asdict(self)

    def is_here(self) -> bool:
        """Whether the group runs on this node (so this process can see and signal it)."""
        return self.node == this_node()

    def members(self) -> list[int]:
        """Its live processes; empty once it is gone (or when its pid now names another)."""
        if not self.is_here() or self.pgid == os.getpgrp():
            return []
        leader = _proc_stat(self.pgid)
        if leader is not None and self.started and len(leader) > 19:
            if int(leader[19]) != self.started:
                return []  # the pid was reused, so the group it led is long gone
        # No leader: while members remain, the kernel keeps the pid for them, so they are ours.
        return _group_members(self.pgid)


def process_group_end(group: ProcessGroup, grace: float = KILL_GRACE_SECONDS) -> bool:
    """SIGTERM the group, SIGKILL what is left after `grace` s; True once nothing of it lives.

    False when it cannot be ended from here: it runs on another node, it belongs to another
    user, or something of it survived SIGKILL (stuck in the kernel).
    """
    if not group.is_here():
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not group.members():
            return True
        try:
            os.killpg(group.pgid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group.members():
            time.sleep(0.05)
    return not group.members()


ProcessGroupHook = Callable[[ProcessGroup], None]


@dataclass(frozen=True)
class _Watch:
    on_start: ProcessGroupHook
    on_exit: ProcessGroupHook


_watch: ContextVar[_Watch | None] = ContextVar("portal_commands_watch", default=None)


@contextmanager
def watch_process_groups(
    *, on_start: ProcessGroupHook, on_exit: ProcessGroupHook
) -> Iterator[None]:
    """Within the block, every `run_command` in this thread reports its process group.

    `on_start(group)` is called in the calling thread right after the command started, before
    any output is read; when it raises, the command is killed and the error propagates (a
    command nobody can find must not run). `on_exit(group)` is called once the group is gone;
    its errors are logged, not raised.
    """
    token = _watch.set(_Watch(on_start, on_exit))
    try:
        yield
    finally:
        _watch.reset(token)


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
    watch = _watch.get()
    group: ProcessGroup | None = None
    try:
        if watch is not None:
            group = ProcessGroup.of(proc.pid, args[0])
            watch.on_start(group)
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
        if watch is not None and group is not None:
            try:
                watch.on_exit(group)
            except Exception:  # the group is gone either way; a stale record is recognised
                logger.exception("reporting the end of %s (pid %s) failed", args[0], proc.pid)
    return CommandResult(
        returncode=returncode,
        output_tail=tail.text(),
        duration=time.monotonic() - started,
        timed_out=timed_out,
        cancelled=cancelled,
    )
