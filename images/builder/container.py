"""One command in a working container of a pinned image, without network (source builds).

`buildah from` the image (pulled first, with the registry credentials, outside any sandbox),
then `buildah run` the command with host directories bind-mounted (the source read-only,
an output directory writable) inside a network and PID namespace of its own
(`unshare --net --pid`, no slirp4netns: the namespace has only a loopback that is down).
buildah's chroot isolation refuses `--network none`; inside that namespace its "host"
network is the empty one. With the `oci` isolation `--network none` is passed as well.
The container is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from portal.commands import CommandResult, run_command

from .buildah import pull_images
from .config import BuilderConfig, CancelFn, LogFn
from .errors import BuildError
from .run import run_tool, tool_env

_CONTAINER_PATH = re.compile(r"^/[A-Za-z0-9._/-]*\Z")


@dataclass(frozen=True)
class Mount:
    """A host directory bind-mounted into the container."""

    host: str
    container: str
    read_only: bool = False

    def argv(self) -> list[str]:
        if not Path(self.host).is_dir():
            raise ValueError(f"mount source is not a directory: {self.host}")
        if not _CONTAINER_PATH.match(self.container) or ".." in self.container.split("/"):
            raise ValueError(f"invalid container path {self.container!r}")
        if "," in self.host or ":" in self.host:
            raise ValueError(f"mount source contains ',' or ':': {self.host}")
        return ["-v", f"{self.host}:{self.container}:{'ro' if self.read_only else 'rw'}"]


def offline_prefix(config: BuilderConfig) -> list[str]:
    """The argv prefix that runs a command in a network and PID namespace of its own with no
    network at all (only a loopback interface that is down)."""
    return [config.unshare, "--net", "--pid", "--fork", "--mount-proc", "--kill-child"]


@contextmanager
def working_container(
    reference: str,
    *,
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None = None,
    pull: bool = True,
) -> Iterator[str]:
    """Pull `reference` (digest-pinned; `pull=False`: the caller pulled it), make a working
    container of it; yield its name.

    The container is removed (`buildah rm`) when the block ends, however it ends.
    """
    if "@sha256:" not in reference:
        raise ValueError(f"the image must be pinned by digest: {reference!r}")
    if pull:
        pull_images([reference], config=config, log=log, should_cancel=should_cancel)
    name = f"bip-run-{uuid.uuid4().hex[:12]}"
    try:
        run_tool(
            config.buildah_argv("from", "--pull=never", "--quiet", "--name", name, reference),
            action=f"buildah from {reference}",
            config=config,
            log=log,
            should_cancel=should_cancel,
        )
        yield name
    finally:
        with contextlib.suppress(OSError):
            run_command(config.buildah_argv("rm", name), timeout=120, env=tool_env())


def container_run(
    container: str,
    command: Sequence[str],
    *,
    mounts: Sequence[Mount],
    workdir: str,
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None = None,
    env: Sequence[tuple[str, str]] = (),
) -> CommandResult:
    """`buildah run` `command` (an argument list) in `container`, offline.

    Raises:
        BuildError: the command exited non-zero (the message names the exit code and the
            last telling line; `output_tail` holds the end of its output), timed out or was
            cancelled.
    """
    if isinstance(command, str) or not command or not all(isinstance(c, str) for c in command):
        raise ValueError("command must be a non-empty list of strings")
    if not _CONTAINER_PATH.match(workdir):
        raise ValueError(f"invalid working directory {workdir!r}")
    argv = ["run", "--isolation", config.isolation]
    if config.isolation != "chroot":
        argv += ["--network", "none"]
    for mount in mounts:
        argv += mount.argv()
    for key, value in env:
        argv += ["--env", f"{key}={value}"]
    argv += ["--workingdir", workdir, container, "--", *command]
    return run_tool(
        [*offline_prefix(config), *config.buildah_argv(*argv)],
        action="build command",
        config=config,
        log=log,
        should_cancel=should_cancel,
        error_class=BuildError,
    )
