"""Pushing a local image to a registry, reporting the digest the push wrote."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .config import BuilderConfig, CancelFn, LogFn, check_tag
from .errors import BuildError, PushUnavailable
from .run import auth_file, run_tool, tls_flag

_DESTINATION_RE = re.compile(
    r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[a-z0-9]+(?:[._/-]+[a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?\Z"
)


def push_image(
    tag: str,
    destination: str,
    *,
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None = None,
) -> str:
    """Push a local image to `host:port/repo:tag`; return the pushed manifest's digest.

    Raises:
        PushUnavailable: the registry could not be reached (retry later).
        BuildError: any other failure (unknown image, denied, ...).
    """
    check_tag(tag)
    if not isinstance(destination, str) or not _DESTINATION_RE.match(destination):
        raise ValueError(
            f"invalid push destination {destination!r}: expected host[:port]/repository[:tag]"
        )
    host = destination.split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="bip-push-") as tmp:
        digestfile = Path(tmp) / "digest"
        with auth_file(config, [host]) as auth:
            argv = config.buildah_argv(
                "push",
                tls_flag(config),
                "--retry",
                "0",
                *auth,
                "--digestfile",
                str(digestfile),
                tag,
                f"docker://{destination}",
            )
            run_tool(
                argv,
                action=f"buildah push {destination}",
                config=config,
                log=log,
                should_cancel=should_cancel,
                error_class=PushUnavailable,
            )
        digest = digestfile.read_text().strip()
    if not re.match(r"^sha256:[a-f0-9]{64}\Z", digest):
        raise BuildError(f"buildah push {destination}: wrote no valid digest ({digest!r})")
    return digest
