"""How the builder runs buildah and mmdebstrap, and the checks on what callers pass in."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

LogFn = Callable[[str], None]
"""Gets each line of a tool's output, in the caller's thread."""
CancelFn = Callable[[], bool]
"""Polled while a tool runs; true kills the tool's process group."""

_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}\Z")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}\Z")


@dataclass(frozen=True)
class BuilderConfig:
    """Where buildah keeps its images and how it talks to registries.

    Attributes:
        storage_root: buildah `--root` (image and layer storage).
        run_root: buildah `--runroot` (state; may be on tmpfs).
        storage_driver: `vfs` works everywhere without kernel overlay support.
        isolation: `chroot` works as root without a container runtime.
        tls_verify: verify TLS for pulls and pushes; False also allows plain-HTTP registries.
        registry_username: credentials for pulls and pushes (written to a private auth file,
            never put on a command line).
        registry_password: see `registry_username`.
        timeout: seconds allowed for one tool invocation.
        buildah: the buildah program.
        mmdebstrap: the mmdebstrap program.
        sandbox: run `buildah bud` in a network, PID and mount namespace of its own, with
            slirp4netns for egress (see `images.builder.sandbox`); off only for tests of the
            builder's other parts.
        allowed_mirrors: URL prefixes a bootstrap's apt mirror may start with; empty allows
            no mirror (the machine's own apt sources only).
        unshare: the unshare program (util-linux).
        slirp4netns: the slirp4netns program.
    """

    storage_root: str
    run_root: str
    storage_driver: str = "vfs"
    isolation: str = "chroot"
    tls_verify: bool = True
    registry_username: str | None = None
    registry_password: str | None = field(default=None, repr=False)
    timeout: float = 3600
    buildah: str = "buildah"
    mmdebstrap: str = "mmdebstrap"
    sandbox: bool = True
    allowed_mirrors: tuple[str, ...] = ()
    unshare: str = "unshare"
    slirp4netns: str = "slirp4netns"

    def __post_init__(self) -> None:
        if not self.storage_root or not self.run_root:
            raise ValueError("BuilderConfig needs a storage_root and a run_root directory")
        if self.isolation not in ("chroot", "oci", "rootless"):
            raise ValueError(f"unknown buildah isolation {self.isolation!r}")
        if (self.registry_username is None) != (self.registry_password is None):
            raise ValueError("give both a registry username and a password, or neither")
        if isinstance(self.allowed_mirrors, str):
            raise ValueError("allowed_mirrors must be a tuple of URL prefixes, not one string")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout!r}")

    def buildah_argv(self, *args: str) -> list[str]:
        """`buildah --root … --runroot … --storage-driver … <args>`."""
        return [
            self.buildah,
            "--root",
            self.storage_root,
            "--runroot",
            self.run_root,
            "--storage-driver",
            self.storage_driver,
            *args,
        ]


def check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise ValueError(f"invalid image tag {tag!r}: e.g. runtime/debian:12")
    return tag


def check_env(env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not _ENV_KEY_RE.match(key):
            raise ValueError(f"invalid environment variable name {key!r}")
        if "\n" in str(value) or "\0" in str(value):
            raise ValueError(f"environment variable {key} contains a newline or NUL")


def check_labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL_KEY_RE.match(key):
            raise ValueError(f"invalid label key {key!r}")
        if "\0" in str(value):
            raise ValueError(f"label {key} contains a NUL byte")


def mirror_allowed(mirror: str, allowed: tuple[str, ...] | list[str]) -> bool:
    """True when `mirror` is one of the `allowed` URL prefixes or below one (by path segment).

    `http://deb.debian.org/debian` allows `http://deb.debian.org/debian/` but not
    `http://deb.debian.org.evil.example/` or `http://deb.debian.org/debian@evil.example/`.
    """
    if ".." in mirror.split("/") or "@" in mirror or "\\" in mirror:
        return False
    for prefix in allowed:
        prefix = prefix.strip()
        if not prefix:
            continue
        if mirror == prefix or mirror == prefix.rstrip("/"):
            return True
        if mirror.startswith(prefix.rstrip("/") + "/"):
            return True
    return False
