"""Images committed to buildah's storage: from a root filesystem, or from a Dockerfile.

Every buildah call gets `--root/--runroot/--storage-driver` from `BuilderConfig`, so the
portal's image storage is its own and never the machine's default.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from portal.commands import run_command

from .config import BuilderConfig, CancelFn, LogFn, check_env, check_labels, check_tag
from .errors import BuildError, PullUnavailable
from .platform import OCI_ARCHITECTURES
from .run import auth_file, run_tool, tls_flag, tool_env
from .sandbox import check_recipe, external_images, sandbox_prefix


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


def pull_images(
    references: Sequence[str],
    *,
    config: BuilderConfig,
    log: LogFn,
    should_cancel: CancelFn | None = None,
) -> None:
    """`buildah pull` each reference into local storage, with the registry credentials.

    Runs outside the build sandbox: the sandboxed `buildah bud` then uses `--pull=never` and
    never sees the credentials.
    """
    for reference in references:
        host = _registry_host(reference)
        with auth_file(config, [host] if host else []) as auth:
            run_tool(
                config.buildah_argv("pull", tls_flag(config), "--quiet", *auth, reference),
                action=f"buildah pull {reference}",
                config=config,
                log=log,
                should_cancel=should_cancel,
                error_class=PullUnavailable,
            )


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
    allowed_images: Collection[str] = (),
) -> ImageResult:
    """`buildah bud` a Dockerfile (given as text) in `context_dir`, tagged `tag`.

    The Dockerfile is checked first (`sandbox.check_recipe`: no mounts, network or security
    flags, remote sources, ONBUILD, or `COPY --from=` outside its stages and
    `allowed_images`). Its base images are pulled with the registry credentials, then
    `buildah bud --pull=never` runs in the build sandbox without them.

    Args:
        allowed_images: the pinned images `COPY --from=` may name besides earlier stages.

    Raises:
        BuildError: the Dockerfile reaches outside its build, or a step failed.
    """
    check_tag(tag)
    check_labels(labels)
    check_env(build_args)
    if not dockerfile_text.strip():
        raise ValueError("the Dockerfile is empty")
    if not Path(context_dir).is_dir():
        raise ValueError(f"build context directory does not exist: {context_dir}")
    check_recipe(dockerfile_text, allowed_images=allowed_images)
    pull_images(
        external_images(dockerfile_text, allowed_images=allowed_images),
        config=config,
        log=log,
        should_cancel=should_cancel,
    )
    with tempfile.TemporaryDirectory(prefix="bip-bud-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(dockerfile_text)
        iidfile = Path(tmp) / "iid"
        argv = config.buildah_argv(
            "bud",
            "--isolation",
            config.isolation,
            "--layers=false",
            "--pull=never",
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
            [*sandbox_prefix(config), *argv],
            action="buildah bud",
            config=config,
            log=log,
            should_cancel=should_cancel,
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
