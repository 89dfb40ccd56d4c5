#!/usr/bin/env python3
"""Run a command in a network, PID and mount namespace of its own, with slirp4netns egress.

    sandbox_run.py UNSHARE SLIRP4NETNS -- COMMAND [ARG...]

A standalone executable script (standard library only, any Python 3.9+), so that everything
of a sandboxed build (this runner, `unshare`, the namespace's processes and `slirp4netns`)
is one process group: the one `run_command` times out and kills, and the job reaper ends
after a lost worker. The command starts only once the namespace's network is up; its exit
status is this script's. When the namespace's PID 1 ends, the kernel kills everything else
in it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

# Runs inside the namespace: wait for the go-ahead on an inherited pipe, then exec the command.
_INNER = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "go = os.read(fd, 1)\n"
    "os.close(fd)\n"
    "if go != b'1':\n"
    "    sys.exit(125)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)
_START_TIMEOUT = 10.0
EXIT_SANDBOX_FAILED = 125


def _fail(message: str) -> int:
    print(f"build sandbox error: {message}", file=sys.stderr, flush=True)
    return EXIT_SANDBOX_FAILED


def _wait_for_namespace(process: subprocess.Popen[bytes]) -> bool:
    """True once `unshare` has made the namespaces (its child, PID 1 there, exists)."""
    children = f"/proc/{process.pid}/task/{process.pid}/children"
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with open(children) as handle:
                if handle.read().split():
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        return _fail("usage: sandbox_run.py UNSHARE SLIRP4NETNS -- COMMAND [ARG...]")
    unshare, slirp4netns, command = argv[0], argv[1], argv[3:]
    go_read, go_write = os.pipe()
    try:
        inner = subprocess.Popen(  # noqa: S603 - an argument list
            [unshare, "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
            + [sys.executable, "-c", _INNER, str(go_read), *command],
            pass_fds=(go_read,),
        )
    except OSError as exc:
        return _fail(f"{unshare} could not run ({exc}); install util-linux")
    finally:
        os.close(go_read)
    slirp: subprocess.Popen[bytes] | None = None
    try:
        if not _wait_for_namespace(inner):
            return _fail("unshare --net --pid did not make the namespaces")
        ready_read, ready_write = os.pipe()
        try:
            slirp = subprocess.Popen(  # noqa: S603 - an argument list
                [slirp4netns, "--configure", "--disable-host-loopback", "--mtu=65520"]
                + [f"--ready-fd={ready_write}", str(inner.pid), "tap0"],
                pass_fds=(ready_write,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            return _fail(f"{slirp4netns} could not run ({exc}); install slirp4netns")
        finally:
            os.close(ready_write)
        try:
            readable, _, _ = select.select([ready_read], [], [], _START_TIMEOUT)
            ready = os.read(ready_read, 1) if readable else b""
        finally:
            os.close(ready_read)
        if ready != b"1":
            return _fail("slirp4netns did not bring up the namespace's network")
        os.write(go_write, b"1")
        status = inner.wait()
        return 128 - status if status < 0 else status  # a signal's number as a shell says it
    finally:
        os.close(go_write)
        for process in (slirp, inner):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
