"""portal.commands: real processes, real signals."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from portal.commands import CommandNotFound, run_command

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
