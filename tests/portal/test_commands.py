"""portal.commands: real processes, real signals."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.commands import (
    CommandNotFound,
    ProcessGroup,
    process_group_end,
    run_command,
    this_node,
    watch_process_groups,
)

PY = sys.executable


def _pids_in_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ... ; comm may contain spaces, so split after ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def test_success_streams_lines_in_order() -> None:
    seen: list[str] = []
    script = "import sys\nfor i in range(200):\n print(f'line {i}', flush=True)\n"
    result = run_command([PY, "-c", script], timeout=30, on_output=seen.append)
    assert result.returncode == 0
    assert result.ok
    assert seen == [f"line {i}" for i in range(200)]
    assert result.output_tail.endswith("line 199")
    assert not result.timed_out and not result.cancelled


def test_stderr_is_merged_in_order() -> None:
    seen: list[str] = []
    script = (
        "import sys\n"
        "print('out1', flush=True)\n"
        "print('err1', file=sys.stderr, flush=True)\n"
        "print('out2', flush=True)\n"
    )
    run_command([PY, "-c", script], timeout=30, on_output=seen.append)
    assert seen == ["out1", "err1", "out2"]


def test_output_arrives_while_the_command_runs() -> None:
    stamps: list[float] = []
    script = (
        "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second', flush=True)\n"
    )
    start = time.monotonic()
    run_command(
        [PY, "-c", script],
        timeout=30,
        on_output=lambda _: stamps.append(time.monotonic()),
    )
    assert len(stamps) == 2
    assert stamps[0] - start < 1.2  # streamed, not collected at the end
    assert stamps[1] - stamps[0] > 1.0


def test_nonzero_exit_is_reported_not_raised() -> None:
    result = run_command(["sh", "-c", "echo boom; exit 3"], timeout=10)
    assert result.returncode == 3
    assert not result.ok
    assert result.output_tail == "boom"


def test_tail_is_bounded() -> None:
    seen = 0

    def count(_: str) -> None:
        nonlocal seen
        seen += 1

    script = "for i in range(50000): print('x' * 100)\n"
    result = run_command([PY, "-c", script], timeout=60, on_output=count, tail_chars=1000)
    assert seen == 50000
    assert len(result.output_tail) <= 1000


def test_very_long_line_is_split() -> None:
    seen: list[str] = []
    run_command([PY, "-c", "print('y' * 100000)"], timeout=30, on_output=seen.append)
    assert "".join(seen) == "y" * 100000
    assert max(len(line) for line in seen) <= 8192


def test_input_bytes_and_env_and_cwd(tmp_path: Path) -> None:
    result = run_command(
        ["sh", "-c", 'read x; echo "$x $GREETING $(pwd)"'],
        timeout=10,
        input_bytes=b"hello\n",
        env={"GREETING": "world", "PATH": os.environ["PATH"]},
        cwd=str(tmp_path),
    )
    assert result.output_tail == f"hello world {tmp_path}"


def test_no_input_means_eof_on_stdin() -> None:
    result = run_command(["cat"], timeout=10)
    assert result.returncode == 0
    assert result.output_tail == ""


def test_timeout_kills_the_whole_process_group() -> None:
    pids: list[str] = []
    start = time.monotonic()
    result = run_command(
        ["sh", "-c", "sleep 100 & echo $!; echo $$; sleep 100"],
        timeout=1.5,
        on_output=pids.append,
    )
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert not result.cancelled
    assert result.returncode < 0
    assert elapsed < 10
    background, shell = (int(p) for p in pids)
    assert _pids_in_group(shell) == []
    assert not Path(f"/proc/{background}").exists() or _pids_in_group(shell) == []


def test_cancel_kills_child_tree_including_term_ignorers() -> None:
    pids: list[str] = []
    calls = 0

    def should_cancel() -> bool:
        nonlocal calls
        calls += 1
        return len(pids) >= 2

    # The child ignores SIGTERM, so the SIGKILL after the grace period is needed.
    script = "trap '' TERM; sleep 100 & echo $!; echo $$; sleep 100; sleep 100"
    start = time.monotonic()
    result = run_command(
        ["sh", "-c", script],
        timeout=60,
        on_output=pids.append,
        should_cancel=should_cancel,
        kill_grace=1.0,
    )
    assert result.cancelled
    assert not result.timed_out
    assert time.monotonic() - start < 10
    assert calls >= 1
    shell = int(pids[1])
    assert _pids_in_group(shell) == []


def test_cancel_is_polled_about_twice_a_second() -> None:
    calls = 0

    def should_cancel() -> bool:
        nonlocal calls
        calls += 1
        return False

    run_command(["sleep", "2"], timeout=10, should_cancel=should_cancel)
    assert 2 <= calls <= 8


def test_leftover_children_are_reaped_after_exit() -> None:
    # The parent exits at once, its background child keeps the output pipe open.
    pids: list[str] = []
    start = time.monotonic()
    result = run_command(["sh", "-c", "sleep 100 & echo $$"], timeout=60, on_output=pids.append)
    assert result.returncode == 0
    assert time.monotonic() - start < 10
    assert _pids_in_group(int(pids[0])) == []


def test_missing_program_raises_command_not_found() -> None:
    with pytest.raises(CommandNotFound, match="command not found: 'no-such-tool-xyz'"):
        run_command(["no-such-tool-xyz", "--help"], timeout=5)


def test_non_executable_raises_command_not_found(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(CommandNotFound, match="not executable"):
        run_command([str(script)], timeout=5)


@pytest.mark.parametrize(
    ("argv", "timeout", "error", "message"),
    [
        ([], 5, ValueError, "must name a program"),
        ("echo hi", 5, TypeError, "not a shell string"),
        (["echo", 3], 5, TypeError, "must be a str"),
        (["echo", "a\0b"], 5, ValueError, "NUL byte"),
        (["echo"], 0, ValueError, "timeout must be a positive"),
        (["echo"], -1, ValueError, "timeout must be a positive"),
    ],
)
def test_bad_arguments_are_rejected(
    argv: object, timeout: float, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        run_command(argv, timeout=timeout)  # type: ignore[arg-type]


def test_missing_cwd_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="working directory does not exist"):
        run_command(["true"], timeout=5, cwd=str(tmp_path / "nope"))


def test_callback_error_kills_the_command() -> None:
    pids: list[str] = []

    def explode(line: str) -> None:
        pids.append(line)
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        run_command(["sh", "-c", "echo $$; sleep 100"], timeout=60, on_output=explode)
    assert _pids_in_group(int(pids[0])) == []


# --- process groups that outlive their starter ----------------------------------------------

# A leader that ignores SIGTERM (kept across exec) and a child: what a lost worker leaves.
ORPHAN = "trap '' TERM; sleep 100 & echo $!; exec sleep 100"


@pytest.fixture
def orphan() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A process group of its own (leader + child), as `run_command` starts tools."""
    proc = subprocess.Popen(["sh", "-c", ORPHAN], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    yield proc, child
    if _pids_in_group(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_a_process_group_is_recognised_by_its_leaders_start_time(orphan) -> None:
    proc, child = orphan
    group = ProcessGroup.of(proc.pid, "sh")
    assert (group.node, group.host, group.pgid, group.program) == (
        this_node(),
        socket.gethostname(),
        proc.pid,
        "sh",
    )
    assert group.started > 0
    assert ProcessGroup.from_dict(group.as_dict()) == group
    assert sorted(group.members()) == sorted([proc.pid, child])
    # The same pid with another start time is some later process: not the group.
    assert dataclasses.replace(group, started=group.started - 1).members() == []
    # Another node's pids mean nothing here, and never this process's own group.
    assert dataclasses.replace(group, node="other-boot/1").members() == []
    assert dataclasses.replace(group, pgid=os.getpgrp()).members() == []


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"node": "n", "host": "h", "pgid": 0, "started": 1, "program": "x"},
        {"node": "n", "host": "h", "pgid": 1, "started": 1, "program": "x"},
        {"node": "n", "host": "h", "pgid": -7, "started": 1, "program": "x"},
        {"node": "n", "host": "h", "pgid": "many", "started": 1, "program": "x"},
        {"node": "n", "host": "h", "pgid": 10, "started": None, "program": "x"},
    ],
)
def test_a_bad_process_group_record_is_refused(data: dict) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        ProcessGroup.from_dict(data)


def test_process_group_end_kills_the_tree_even_a_term_ignorer(orphan) -> None:
    proc, child = orphan
    group = ProcessGroup.of(proc.pid, "sh")
    start = time.monotonic()
    assert process_group_end(group, grace=0.5) is True
    assert time.monotonic() - start < 5
    assert group.members() == [] and _pids_in_group(proc.pid) == []
    assert process_group_end(group, grace=0.5) is True  # already gone: nothing to do


def test_process_group_end_cannot_reach_another_node(orphan) -> None:
    proc, child = orphan
    elsewhere = dataclasses.replace(ProcessGroup.of(proc.pid, "sh"), node="other-boot/1")
    assert process_group_end(elsewhere, grace=0.5) is False
    assert sorted(_pids_in_group(proc.pid)) == sorted([proc.pid, child])


def test_watched_commands_report_their_group_while_they_run() -> None:
    events: list[tuple[str, ProcessGroup]] = []
    lines: list[str] = []

    def on_output(line: str) -> None:
        lines.append(line)
        assert [kind for kind, _ in events] == ["start"]  # reported before any output

    with watch_process_groups(
        on_start=lambda g: events.append(("start", g)), on_exit=lambda g: events.append(("exit", g))
    ):
        run_command(["sh", "-c", "echo $$"], timeout=30, on_output=on_output)
    (start, started), (end, ended) = events
    assert (start, end) == ("start", "exit") and started == ended
    assert started.pgid == int(lines[0]) and started.program == "sh"
    run_command(["true"], timeout=30)  # outside the block: nobody is told
    assert len(events) == 2


def test_a_command_that_cannot_be_reported_does_not_run() -> None:
    def refuse(group: ProcessGroup) -> None:
        refuse.group = group  # type: ignore[attr-defined]
        raise RuntimeError("no database")

    with (
        watch_process_groups(on_start=refuse, on_exit=lambda g: None),
        pytest.raises(RuntimeError, match="no database"),
    ):
        run_command(["sleep", "100"], timeout=60)
    assert _pids_in_group(refuse.group.pgid) == []  # type: ignore[attr-defined]


def test_a_failing_exit_report_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def fail(group: ProcessGroup) -> None:
        raise RuntimeError("no database")

    with (
        caplog.at_level(logging.ERROR),
        watch_process_groups(on_start=lambda g: None, on_exit=fail),
    ):
        result = run_command(["echo", "hi"], timeout=30)
    assert result.ok
    assert "reporting the end of echo" in caplog.text
