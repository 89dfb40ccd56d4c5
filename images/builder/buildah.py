"""Images committed to buildah's storage: from a root filesystem, or from a Dockerfile.

Every buildah call gets `--root/--runroot/--storage-driver` from `BuilderConfig`, so the
portal's image storage is its own and never the machine's default.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from portal.commands import run_command

from .config import BuilderConfig, CancelFn, LogFn, check_env, check_labels, check_tag
from .errors import BuildError, PullUnavailable
from .platform import OCI_ARCHITECTURES
from .run import auth_file, run_tool, tls_flag, tool_env


@dataclass(frozen=True)
class ImageResult:
    """An image committed to buildah storage."""

    tag: str
    image_id: str
    duration: float
    output_tail: str


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
    arch: str | None = None,
) -> ImageResult:
    """Turn a rootfs tarball into an image: from scratch, add, config, commit.

    Args:
        arch: the OCI architecture the image config records (`arm64`; see
            `oci_architecture`); None leaves buildah's default, the build machine's.
    """
    check_tag(tag)
    check_env(env)
    check_labels(labels)
    if arch is not None and arch not in OCI_ARCHITECTURES:
        raise ValueError(f"invalid architecture {arch!r}: an OCI name such as amd64 or arm64")
    if isinstance(cmd, str) or not all(isinstance(c, str) for c in cmd):
        raise ValueError("cmd must be a list of strings (exec form), not a shell string")
    if not Path(tar_path).is_file():
        raise ValueError(f"root filesystem tarball not found: {tar_path}")
    container = f"bip-{uuid.uuid4().hex[:12]}"
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
            settings += ["--cmd", json.dumps(list(cmd)), "--os", "linux"]
            if arch is not None:
                settings += ["--arch", arch]
            settings.append(container)
            steps.append(("buildah config", config.buildah_argv(*settings)))
            steps.append(
                (
                    "buildah commit",
                    config.buildah_argv("commit", "--iidfile", str(iidfile), container, tag),
                )
            )
            for action, argv in steps:
                result = run_tool(
                    argv, action=action, config=config, log=log, should_cancel=should_cancel
                )
                durations += result.duration
                output = result.output_tail
        finally:
            run_command(config.buildah_argv("rm", container), timeout=120, env=tool_env())
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
    check_tag(tag)
    check_labels(labels)
    check_env(build_args)
    if not dockerfile_text.strip():
        raise ValueError("the Dockerfile is empty")
    if not Path(context_dir).is_dir():
        raise ValueError(f"build context directory does not exist: {context_dir}")
    with tempfile.TemporaryDirectory(prefix="bip-bud-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(dockerfile_text)
        iidfile = Path(tmp) / "iid"
        with auth_file(config, _from_hosts(dockerfile_text)) as auth:
            argv = config.buildah_argv(
                "bud",
                "--isolation",
                config.isolation,
                "--layers=false",
                tls_flag(config),
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
            result = run_tool(
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


def remove_image(tag: str, config: BuilderConfig, *, log: LogFn | None = None) -> bool:
    """Remove a local image; False if it did not exist."""
    check_tag(tag)
    lines: list[str] = []
    result = run_command(
        config.buildah_argv("rmi", tag),
        timeout=min(config.timeout, 300),
        on_output=log or lines.append,
        env=tool_env(),
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
