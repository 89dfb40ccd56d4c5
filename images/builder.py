"""Build images with buildah and mmdebstrap, without a Docker daemon.

Pure module, no Django: the build job calls these functions and records what they return.
Every buildah call gets `--root/--runroot/--storage-driver` from `BuilderConfig`, so the
portal's image storage is its own and never the machine's default. Each function takes a
`log` callback (one line at a time, in the caller's thread) and a `should_cancel` callback,
and raises `BuildError` naming the failed step and exit code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from portal.commands import CommandResult, run_command

LogFn = Callable[[str], None]
CancelFn = Callable[[], bool]

RUNTIME_ENV: Mapping[str, str] = {
    "TZ": "Asia/Shanghai",
    "LANG": "en_US.utf8",
    "LC_ALL": "en_US.utf8",
}
"""Default environment of runtime bootstraps (the platform standard)."""

DEFAULT_LOCALE = "en_US.UTF-8 UTF-8"

_SUITE_RE = re.compile(r"^[a-z][a-z0-9.-]{1,31}$")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:[=/][A-Za-z0-9.+~:-]+)?$")
_MIRROR_RE = re.compile(r"^(?:https?|file)://[^\s'\"]+$")
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
_DESTINATION_RE = re.compile(
    r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?/[a-z0-9]+(?:[._/-]+[a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)
_STEP_RE = re.compile(r"^STEP (\d+)(?:/(\d+))?: (.*)$")
_EXIT_STATUS_RE = re.compile(r"exit status (\d+)")
_UNAVAILABLE_PATTERNS = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "connection reset by peer",
    "server misbehaving",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "429 too many requests",
    "too many requests",
)


class BuildError(Exception):
    """A build step failed.

    Attributes:
        message: what failed, naming the step and exit code.
        output_tail: the last lines of the tool's output.
        step: the step that failed (e.g. `STEP 2/3: RUN make`), or the tool action.
        returncode: the tool's exit code (or the RUN command's, when known).
    """

    def __init__(
        self,
        message: str,
        output_tail: str = "",
        *,
        step: str = "",
        returncode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.output_tail = output_tail
        self.step = step
        self.returncode = returncode


class BuildCancelled(BuildError):
    """The build was cancelled; its processes were killed."""


class BuildTimeout(BuildError):
    """The build ran past its timeout; its processes were killed."""


class PushUnavailable(BuildError):
    """The registry could not be reached during a push: transient, worth retrying."""


class PullUnavailable(BuildError):
    """The base image's registry could not be reached (FROM step): transient, worth retrying."""


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

    def __post_init__(self) -> None:
        if not self.storage_root or not self.run_root:
            raise ValueError("BuilderConfig needs a storage_root and a run_root directory")
        if self.isolation not in ("chroot", "oci", "rootless"):
            raise ValueError(f"unknown buildah isolation {self.isolation!r}")
        if (self.registry_username is None) != (self.registry_password is None):
            raise ValueError("give both a registry username and a password, or neither")
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
            r"^[A-Za-z_]+(?:\.[A-Za-z0-9-]+)?(?:@\w+)? [A-Za-z0-9-]+$", self.locale
        ):
            raise ValueError(f"invalid locale line {self.locale!r}: e.g. 'en_US.UTF-8 UTF-8'")
        if not re.match(r"^[a-z0-9]+$", self.architecture):
            raise ValueError(f"invalid architecture {self.architecture!r}")


@dataclass(frozen=True)
class BootstrapResult:
    """A root filesystem tarball made by `bootstrap_rootfs`."""

    tar_path: str
    size: int
    sha256: str
    duration: float
    output_tail: str


@dataclass(frozen=True)
class ImageResult:
    """An image committed to buildah storage."""

    tag: str
    image_id: str
    duration: float
    output_tail: str


# --- helpers ------------------------------------------------------------------------------


def _check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise ValueError(f"invalid image tag {tag!r}: e.g. runtime/debian:12")
    return tag


def _check_env(env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not _ENV_KEY_RE.match(key):
            raise ValueError(f"invalid environment variable name {key!r}")
        if "\n" in str(value) or "\0" in str(value):
            raise ValueError(f"environment variable {key} contains a newline or NUL")


def _check_labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL_KEY_RE.match(key):
            raise ValueError(f"invalid label key {key!r}")
        if "\0" in str(value):
            raise ValueError(f"label {key} contains a NUL byte")


def _tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_AUTH", "BUILDAH_"))}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["LC_ALL"] = "C.UTF-8"  # tool messages in English, parsable
    return env


@contextmanager
def _auth_file(config: BuilderConfig, registry_hosts: Iterable[str]) -> Iterator[list[str]]:
    """`--authfile` arguments for credentials, in a private temp file removed afterwards."""
    hosts = sorted(set(registry_hosts))
    if config.registry_username is None or not hosts:
        yield []
        return
    secret = f"{config.registry_username}:{config.registry_password}".encode()
    entry = {"auth": base64.b64encode(secret).decode()}
    fd, path = tempfile.mkstemp(prefix="bip-auth-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
            json.dump({"auths": dict.fromkeys(hosts, entry)}, handle)
        yield ["--authfile", path]
    finally:
        Path(path).unlink(missing_ok=True)


def _tls_flag(config: BuilderConfig) -> str:
    return f"--tls-verify={'true' if config.tls_verify else 'false'}"


def _run(
    argv: Sequence[str],
    *,
    action: str,
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None,
    cwd: str | None = None,
    error_class: type[BuildError] = BuildError,
) -> CommandResult:
    """Run one tool step; raise BuildError/BuildCancelled/BuildTimeout when it does not succeed."""
    current_step = ""

    def on_output(line: str) -> None:
        nonlocal current_step
        match = _STEP_RE.match(line)
        if match:
            current_step = line
        log(line)

    result = run_command(
        argv,
        timeout=config.timeout,
        on_output=on_output,
        should_cancel=should_cancel,
        env=_tool_env(),
        cwd=cwd,
    )
    where = f"{action}, {current_step}" if current_step else action
    if result.cancelled:
        raise BuildCancelled(f"{where}: cancelled", result.output_tail, step=current_step or action)
    if result.timed_out:
        raise BuildTimeout(
            f"{where}: timed out after {config.timeout:g} s",
            result.output_tail,
            step=current_step or action,
        )
    if result.returncode != 0:
        lowered = result.output_tail.lower()
        reason = next((p for p in _UNAVAILABLE_PATTERNS if p in lowered), "")
        pulling = not current_step or " FROM " in f" {current_step.split(':', 1)[-1]} "
        if error_class is PullUnavailable and not pulling:
            error_class = BuildError  # e.g. a RUN step's own network failure is no retry case
        if error_class in (PushUnavailable, PullUnavailable) and not reason:
            error_class = BuildError
        inner = _EXIT_STATUS_RE.findall(result.output_tail) if current_step else []
        code = int(inner[-1]) if inner else result.returncode
        detail = f"exit code {code}" if inner else f"exit code {result.returncode}"
        last = _last_error_line(result.output_tail)
        message = f"{where} failed ({detail})"
        if error_class in (PushUnavailable, PullUnavailable):
            message += f": registry unavailable ({reason})"
        message += f": {last}" if last else ""
        raise error_class(message, result.output_tail, step=current_step or action, returncode=code)
    return result


def _last_error_line(output: str) -> str:
    """The most telling line of a failed tool's output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    strong = ("e:", "error", "fatal", "unknown option", "mmdebstrap: error")
    for line in reversed(lines):
        lowered = line.lower()
        if lowered.startswith(strong) or (lowered.startswith("time=") and "error" in lowered):
            return line[:300]
    return lines[-1][:300] if lines else ""


def _registry_host(reference: str) -> str | None:
    first = reference.split("/", 1)[0]
    if "/" in reference and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def _from_hosts(dockerfile_text: str) -> set[str]:
    """Registry hosts named by the Dockerfile's FROM lines (for credentials)."""
    hosts = set()
    for line in dockerfile_text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0].upper() != "FROM":
            continue
        image = next((w for w in words[1:] if not w.startswith("--")), "")
        host = _registry_host(image)
        if host:
            hosts.add(host)
    return hosts


# --- public API ---------------------------------------------------------------------------


def oci_labels(
    *,
    title: str,
    version: str,
    source_request: str,
    recipe_text: str,
    created: datetime,
    revision: str = "",
) -> dict[str, str]:
    """The standard labels every portal image carries.

    Args:
        title: the image name (`runtime/debian`).
        version: the tag (`12`).
        source_request: the portal request URL or id that produced the image.
        recipe_text: the Dockerfile or bootstrap recipe, hashed into the labels.
        created: build time, timezone-aware.
        revision: a source revision if any.
    """
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("created must be a timezone-aware datetime")
    if not title or not version:
        raise ValueError("title and version are required for image labels")
    created_text = created.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": created_text,
        "org.opencontainers.image.source": source_request,
        "org.opencontainers.image.revision": revision,
        "io.baseimage.portal.request": source_request,
        "io.baseimage.portal.recipe-sha256": hashlib.sha256(recipe_text.encode()).hexdigest(),
    }


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
    """Make a root filesystem tarball with mmdebstrap (written atomically to `out_tar`)."""
    target = Path(out_tar)
    if not target.parent.is_dir():
        raise ValueError(f"output directory does not exist: {target.parent}")
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        result = _run(
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


def image_from_rootfs(
    tar_path: str,
    *,
    tag: str,
    env: Mapping[str, str],
    cmd: Sequence[str],
    labels: Mapping[str, str],
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None = None,
) -> ImageResult:
    """Turn a rootfs tarball into an image: from scratch, add, config, commit."""
    _check_tag(tag)
    _check_env(env)
    _check_labels(labels)
    if isinstance(cmd, str) or not all(isinstance(c, str) for c in cmd):
        raise ValueError("cmd must be a list of strings (exec form), not a shell string")
    if not Path(tar_path).is_file():
        raise ValueError(f"root filesystem tarball not found: {tar_path}")
    container = f"bip-{uuid.uuid4().hex[:12]}"
    common = {"config": config, "log": log, "should_cancel": should_cancel}
    durations = 0.0
    output = ""
    with tempfile.TemporaryDirectory(prefix="bip-commit-") as tmp:
        iidfile = Path(tmp) / "iid"
        try:
            steps: list[tuple[str, list[str]]] = [
                (
                    "buildah from scratch",
                    config.buildah_argv("from", "--name", container, "scratch"),
                ),
                (
                    "buildah add rootfs",
                    config.buildah_argv("add", container, tar_path, "/"),
                ),
            ]
            settings = ["config"]
            for key, value in env.items():
                settings += ["--env", f"{key}={value}"]
            for key, value in labels.items():
                settings += ["--label", f"{key}={value}"]
            settings += ["--cmd", json.dumps(list(cmd)), "--os", "linux", container]
            steps.append(("buildah config", config.buildah_argv(*settings)))
            steps.append(
                (
                    "buildah commit",
                    config.buildah_argv("commit", "--iidfile", str(iidfile), container, tag),
                )
            )
            for action, argv in steps:
                result = _run(argv, action=action, **common)  # type: ignore[arg-type]
                durations += result.duration
                output = result.output_tail
        finally:
            run_command(config.buildah_argv("rm", container), timeout=120, env=_tool_env())
        image_id = iidfile.read_text().strip()
    return ImageResult(tag=tag, image_id=image_id, duration=durations, output_tail=output)


def build_dockerfile(
    dockerfile_text: str,
    *,
    context_dir: str,
    tag: str,
    labels: Mapping[str, str],
    build_args: Mapping[str, str],
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None = None,
) -> ImageResult:
    """`buildah bud` a Dockerfile (given as text) in `context_dir`, tagged `tag`."""
    _check_tag(tag)
    _check_labels(labels)
    _check_env(build_args)
    if not dockerfile_text.strip():
        raise ValueError("the Dockerfile is empty")
    if not Path(context_dir).is_dir():
        raise ValueError(f"build context directory does not exist: {context_dir}")
    with tempfile.TemporaryDirectory(prefix="bip-bud-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(dockerfile_text)
        iidfile = Path(tmp) / "iid"
        with _auth_file(config, _from_hosts(dockerfile_text)) as auth:
            argv = config.buildah_argv(
                "bud",
                "--isolation",
                config.isolation,
                "--layers=false",
                _tls_flag(config),
                *auth,
                "--iidfile",
                str(iidfile),
                "-f",
                str(dockerfile),
                "-t",
                tag,
            )
            for key, value in labels.items():
                argv += ["--label", f"{key}={value}"]
            for key, value in build_args.items():
                argv += ["--build-arg", f"{key}={value}"]
            argv.append(context_dir)
            result = _run(
                argv,
                action="buildah bud",
                config=config,
                log=log,
                should_cancel=should_cancel,
                error_class=PullUnavailable,
            )
        image_id = iidfile.read_text().strip()
    return ImageResult(
        tag=tag,
        image_id=image_id,
        duration=result.duration,
        output_tail=result.output_tail,
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
    _check_tag(tag)
    if not isinstance(destination, str) or not _DESTINATION_RE.match(destination):
        raise ValueError(
            f"invalid push destination {destination!r}: expected host[:port]/repository[:tag]"
        )
    host = destination.split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="bip-push-") as tmp:
        digestfile = Path(tmp) / "digest"
        with _auth_file(config, [host]) as auth:
            argv = config.buildah_argv(
                "push",
                _tls_flag(config),
                "--retry",
                "0",
                *auth,
                "--digestfile",
                str(digestfile),
                tag,
                f"docker://{destination}",
            )
            _run(
                argv,
                action=f"buildah push {destination}",
                config=config,
                log=log,
                should_cancel=should_cancel,
                error_class=PushUnavailable,
            )
        digest = digestfile.read_text().strip()
    if not re.match(r"^sha256:[a-f0-9]{64}$", digest):
        raise BuildError(f"buildah push {destination}: wrote no valid digest ({digest!r})")
    return digest


def remove_image(tag: str, config: BuilderConfig, *, log: LogFn | None = None) -> bool:
    """Remove a local image; False if it did not exist."""
    _check_tag(tag)
    lines: list[str] = []
    result = run_command(
        config.buildah_argv("rmi", tag),
        timeout=min(config.timeout, 300),
        on_output=log or lines.append,
        env=_tool_env(),
    )
    if result.returncode == 0:
        return True
    if "image not known" in result.output_tail or "not found" in result.output_tail.lower():
        return False
    raise BuildError(
        f"buildah rmi {tag} failed (exit code {result.returncode})",
        result.output_tail,
        step="buildah rmi",
        returncode=result.returncode,
    )
