"""The build sandbox: what a Dockerfile may do, and the namespaces its RUN steps run in.

Defence in depth next to the policy engine (rules BIP040-BIP044): `recipe_escapes` refuses
`RUN --mount`/`--network`/`--security`, remote `ADD`/`COPY` sources, `ONBUILD` and
`COPY --from=` of anything but an earlier stage or an image the caller pinned — whatever
severity a policy file gives those rules. Besides the BuildKit-style logical instructions it
reads every physical line that starts with an instruction keyword as an instruction of its
own, so text that another Dockerfile parser (buildah 1.28 has no heredocs) would run is
checked too.

`network_sandbox` gives `buildah bud` a network, PID and mount namespace of its own
(`unshare`), with `slirp4netns --disable-host-loopback` for egress: RUN steps can download
packages but see neither the host's processes nor its loopback services (the portal,
PostgreSQL, Redis, the registry). Pulls and pushes run outside it, with the credentials.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from images.policy.escapes import Escape, copy_from_value, instruction_escapes
from images.policy.parser import parse_dockerfile

from .config import BuilderConfig
from .errors import BuildError

_KEYWORD_LINE_RE = re.compile(r"^\s*(RUN|ADD|COPY|ONBUILD)\s+(.*)$", re.IGNORECASE)
_START_TIMEOUT = 10.0


def recipe_escapes(text: str, *, allowed_images: Collection[str] = ()) -> list[Escape]:
    """Every way the Dockerfile `text` reaches outside its build (empty: none).

    Args:
        allowed_images: image references `COPY --from=` may name besides earlier stages
            (the catalog images the build job resolved and pinned).
    """
    parsed = parse_dockerfile(text)
    found: dict[tuple[str, int], Escape] = {}

    def check(keyword: str, args: str, line: int) -> None:
        for escape in instruction_escapes(keyword, args, line):
            found.setdefault((escape.rule, escape.line), escape)
        source = copy_from_value(keyword.upper(), args)
        if source is None or line in parsed.stage_ref_lines or source in allowed_images:
            return
        escape = Escape(
            "BIP043",
            line,
            f"{keyword.upper()} --from={source[:120]} is neither an earlier stage nor a catalog "
            "image the portal pinned: copy from an earlier stage or an approved catalog image.",
        )
        found.setdefault((escape.rule, escape.line), escape)

    for instruction in parsed.instructions:
        check(instruction.keyword, instruction.args, instruction.line)
    for number, line in enumerate(text.split("\n"), start=1):
        match = _KEYWORD_LINE_RE.match(line)
        if match:
            check(match.group(1), match.group(2), number)
    return sorted(found.values(), key=lambda e: (e.line, e.rule))


def check_recipe(text: str, *, allowed_images: Collection[str] = ()) -> None:
    """Raise BuildError when the Dockerfile reaches outside its build (see `recipe_escapes`)."""
    escapes = recipe_escapes(text, allowed_images=allowed_images)
    if escapes:
        listed = "; ".join(f"line {e.line}: {e.message}" for e in escapes[:10])
        more = f" (and {len(escapes) - 10} more)" if len(escapes) > 10 else ""
        raise BuildError(
            f"The builder refuses this Dockerfile, it reaches outside its build: {listed}{more}",
            step="sandbox check",
        )


def external_images(text: str, *, allowed_images: Collection[str] = ()) -> list[str]:
    """The images a build needs in local storage: FROM bases (not stages, not scratch) and the
    allowed `COPY --from=` images, in order, once each."""
    parsed = parse_dockerfile(text)
    images: list[str] = []
    for stage in parsed.stages:
        if stage.parent_stage is None and stage.base and stage.base.lower() != "scratch":
            images.append(stage.base)
        for instruction in stage.instructions:
            source = copy_from_value(instruction.keyword, instruction.args)
            if source is not None and source in allowed_images:
                if instruction.line not in parsed.stage_ref_lines:
                    images.append(source)
    return list(dict.fromkeys(images))


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _namespace_child(holder: subprocess.Popen[bytes]) -> int:
    """The PID (seen from here) of the holder's child, PID 1 of the new PID namespace."""
    children = Path(f"/proc/{holder.pid}/task/{holder.pid}/children")
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if holder.poll() is not None:
            break
        with suppress(OSError):
            words = children.read_text().split()
            if words:
                return int(words[0])
        time.sleep(0.02)
    stderr = holder.stderr.read().decode(errors="replace") if holder.stderr else ""
    raise BuildError(
        f"The build sandbox did not start (unshare --net --pid): {stderr.strip()[:300]}",
        step="build sandbox",
    )


@contextmanager
def network_sandbox(config: BuilderConfig, env: dict[str, str]) -> Iterator[list[str]]:
    """An argv prefix that runs a command in the build's own network, PID and mount namespace.

    Yields [] when `config.sandbox` is off. Everything in the namespace is killed on exit
    (its PID 1 ends).
    """
    if not config.sandbox:
        yield []
        return
    holder: subprocess.Popen[bytes] | None = None
    slirp: subprocess.Popen[bytes] | None = None
    try:
        holder = subprocess.Popen(  # noqa: S603 - a fixed argument list
            [config.unshare, "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]
            + ["sleep", "infinity"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        child = _namespace_child(holder)
        ready_read, ready_write = os.pipe()
        try:
            slirp = subprocess.Popen(  # noqa: S603 - a fixed argument list
                [
                    config.slirp4netns,
                    "--configure",
                    "--disable-host-loopback",
                    "--mtu=65520",
                    f"--ready-fd={ready_write}",
                    str(holder.pid),
                    "tap0",
                ],
                env=env,
                pass_fds=(ready_write,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        finally:
            os.close(ready_write)
        try:
            readable, _, _ = select.select([ready_read], [], [], _START_TIMEOUT)
            ready = os.read(ready_read, 1) if readable else b""
        finally:
            os.close(ready_read)
        if ready != b"1":
            _stop(slirp)
            stderr = slirp.stderr.read().decode(errors="replace") if slirp.stderr else ""
            raise BuildError(
                f"The build sandbox's network (slirp4netns) did not start: {stderr.strip()[:300]}",
                step="build sandbox",
            )
        yield [config.nsenter, f"--target={child}", "--net", "--pid", "--mount", "--"]
    finally:
        _stop(slirp)
        _stop(holder)
