"""The image-mode Dockerfile: the binary copied onto the unchanged runtime base image."""

from __future__ import annotations

import json
from collections.abc import Sequence

from images.texts import _

from .checks import _FILENAME, _PINNED_IMAGE, _check_path, _check_pinned, _check_text
from .inputs import DEFAULT_ARGS, RUN_AS_USER, ManifestError


def render_app_dockerfile(
    runtime_image: str,
    binary_filename: str,
    command: Sequence[str] = (),
    args: Sequence[str] = DEFAULT_ARGS,
    user: int = RUN_AS_USER,
    *,
    app_dir: str = "/opt/app",
) -> str:
    """Render the image-mode Dockerfile: the binary on the unchanged runtime base image.

    The binary is copied to ``<app_dir>/<binary_filename>`` (the path volume mode mounts
    it at, so command lines are the same in both modes), owned by root and read-only.

    Args:
        runtime_image: approved runtime image, digest-pinned.
        binary_filename: file name of the binary in the build context.
        command: overrides ``[<app_dir>/<binary_filename>]``.
        args: appended to the command in ``CMD`` (the standard's ``-m release``).
        user: numeric non-root user the container runs as.
        app_dir: directory the binary is copied into.

    Raises:
        ManifestError: any invalid value.
    """
    errors: list[str] = []
    _check_pinned(errors, "runtime_image", runtime_image)
    if not isinstance(binary_filename, str) or not _FILENAME.match(binary_filename):
        errors.append(
            _(
                "binary_filename must be a plain file name, got %(value)s",
                value=repr(binary_filename),
            )
        )
    if isinstance(user, bool) or not isinstance(user, int) or not 0 < user < 2**31:
        errors.append(
            _("user must be a non-root numeric uid (1 .. 2^31-1), got %(value)s", value=repr(user))
        )
    _check_path(errors, "app_dir", app_dir)
    for index, item in enumerate(command):
        _check_text(errors, f"command[{index}]", item)
    for index, item in enumerate(args):
        _check_text(errors, f"args[{index}]", item)
    if errors:
        raise ManifestError(errors)
    match = _PINNED_IMAGE.match(runtime_image)
    assert match is not None  # noqa: S101 - checked above
    target = f"{app_dir}/{binary_filename}"
    cmd = [*(command or [target]), *args]
    exec_form = json.dumps(cmd, ensure_ascii=False)
    return (
        f"FROM {runtime_image}\n"
        f'LABEL org.opencontainers.image.base.name="{match.group("name")}" \\\n'
        f'      org.opencontainers.image.base.digest="{match.group("digest")}"\n'
        f"COPY --chown=0:0 --chmod=0555 {binary_filename} {target}\n"
        f"USER {user}:{user}\n"
        f"CMD {exec_form}\n"
    )
