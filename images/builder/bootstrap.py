"""An OS root filesystem from Debian packages, made by mmdebstrap (no container runtime)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from images.texts import _

from .config import BuilderConfig, CancelFn, LogFn, mirror_allowed
from .errors import BuildError
from .run import run_tool

RUNTIME_ENV: Mapping[str, str] = {
    "TZ": "Asia/Shanghai",
    "LANG": "en_US.utf8",
    "LC_ALL": "en_US.utf8",
}
"""Default environment of runtime bootstraps (the platform standard)."""

DEFAULT_LOCALE = "en_US.UTF-8 UTF-8"

_SUITE_RE = re.compile(r"^[a-z][a-z0-9.-]{1,31}\Z")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:[=/][A-Za-z0-9.+~:-]+)?\Z")
_MIRROR_RE = re.compile(r"^(?:https?|file)://[^\s'\"]+\Z")


@dataclass(frozen=True)
class BootstrapSpec:
    """An OS root filesystem made from Debian packages by mmdebstrap.

    Attributes:
        suite: the Debian suite (`bookworm`).
        variant: mmdebstrap variant (`minbase`, `buildd`, ...).
        packages: extra packages to include.
        mirror: an apt mirror URL; None uses this machine's apt sources.
        locale: a `locale.gen` line to generate (runtime images), or "" for none.
        architecture: the Debian architecture to build for.
    """

    suite: str = "bookworm"
    variant: str = "minbase"
    packages: tuple[str, ...] = ()
    mirror: str | None = None
    locale: str = DEFAULT_LOCALE
    architecture: str = "amd64"

    def __post_init__(self) -> None:
        if not _SUITE_RE.match(self.suite):
            raise ValueError(f"invalid suite {self.suite!r}: e.g. bookworm")
        if self.variant not in (
            "extract",
            "custom",
            "essential",
            "apt",
            "minbase",
            "buildd",
        ):
            raise ValueError(f"invalid mmdebstrap variant {self.variant!r}: e.g. minbase")
        if isinstance(self.packages, str):
            raise ValueError("packages must be a list of package names, not one string")
        for name in self.packages:
            if not isinstance(name, str) or not _PACKAGE_RE.match(name):
                raise ValueError(f"invalid Debian package name {name!r}")
        if self.mirror is not None and not _MIRROR_RE.match(self.mirror):
            raise ValueError(f"invalid mirror {self.mirror!r}: expected an http(s):// URL")
        if self.locale and not re.match(
            r"^[A-Za-z_]+(?:\.[A-Za-z0-9-]+)?(?:@\w+)? [A-Za-z0-9-]+\Z", self.locale
        ):
            raise ValueError(f"invalid locale line {self.locale!r}: e.g. 'en_US.UTF-8 UTF-8'")
        if not re.match(r"^[a-z0-9]+\Z", self.architecture):
            raise ValueError(f"invalid architecture {self.architecture!r}")


@dataclass(frozen=True)
class BootstrapResult:
    """A root filesystem tarball made by `bootstrap_rootfs`."""

    tar_path: str
    size: int
    sha256: str
    duration: float
    output_tail: str


def bootstrap_command(spec: BootstrapSpec, out_tar: str, *, config: BuilderConfig) -> list[str]:
    """The mmdebstrap argument list for `spec` (also a stable cache key for the result)."""
    packages = list(spec.packages)
    hooks: list[str] = []
    if spec.locale:
        if "locales" not in packages:
            packages.append("locales")
        hooks += [
            f"--customize-hook=echo '{spec.locale}' > \"$1/etc/locale.gen\"",
            '--customize-hook=chroot "$1" locale-gen',
        ]
    hooks += [
        '--customize-hook=chroot "$1" apt-get clean',
        '--customize-hook=rm -rf "$1/var/lib/apt/lists/"* "$1/var/log/apt/"*'
        ' "$1/var/cache/debconf/"*-old',
    ]
    argv = [
        config.mmdebstrap,
        f"--variant={spec.variant}",
        f"--architectures={spec.architecture}",
        "--format=tar",
        "--mode=root",
        # Small images: no documentation or manual pages (as the official slim images do).
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
    ]
    if packages:
        argv.append("--include=" + ",".join(packages))
    argv += hooks
    argv += [spec.suite, out_tar]
    if spec.mirror:
        argv.append(spec.mirror)
    return argv


def bootstrap_rootfs(
    spec: BootstrapSpec,
    out_tar: str,
    *,
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None = None,
) -> BootstrapResult:
    """Make a root filesystem tarball with mmdebstrap (written atomically to `out_tar`).

    Raises:
        BuildError: the spec's mirror is not on `config.allowed_mirrors`, or mmdebstrap failed.
    """
    if spec.mirror is not None and not mirror_allowed(spec.mirror, config.allowed_mirrors):
        allowed = ", ".join(config.allowed_mirrors) or _("none: only this machine's apt sources")
        raise BuildError(
            _(
                "The builder refuses the bootstrap mirror %(mirror)s: it is not on the allow-list "
                "(PORTAL_BOOTSTRAP_MIRRORS: %(allowed)s). Remove the mirror from the recipe, or "
                "ask the platform team to allow it.",
                mirror=str(spec.mirror),
                allowed=allowed,
            ),
            step="bootstrap mirror",
        )
    target = Path(out_tar)
    if not target.parent.is_dir():
        raise ValueError(f"output directory does not exist: {target.parent}")
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        result = run_tool(
            bootstrap_command(spec, str(partial), config=config),
            action=f"mmdebstrap {spec.suite} ({spec.variant})",
            config=config,
            log=log,
            should_cancel=should_cancel,
        )
        digest = hashlib.sha256()
        with partial.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return BootstrapResult(
        tar_path=str(target),
        size=target.stat().st_size,
        sha256=digest.hexdigest(),
        duration=result.duration,
        output_tail=result.output_tail,
    )
