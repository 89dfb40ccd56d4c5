"""Source builds: the checks of a build request's parts, before anything is stored.

The build command (argv or a shell string), the output path under /out, the build image
version (approved, a build image), the archive's unpacking limits and the archive's
content-addressed storage name. `source_builds.source_build_start` calls them in order.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, gettext_lazy

from images.choices import ImageKind, VersionState
from images.models import ImageVersion
from portal.templatetags.portal_i18n import status_label

from ..sourcearchive import ArchiveLimits

SOURCE_PREFIX = "sources/sha256"
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_OUTPUT_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+/-]{0,299}\Z")
MAX_COMMAND_ARGS = 256
MAX_COMMAND_BYTES = 64 * 1024


def source_storage_name(sha256: str) -> str:
    """`sources/sha256/<aa>/<sha256>`: where a source archive is stored."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return f"{SOURCE_PREFIX}/{sha256[:2]}/{sha256}"


def archive_limits() -> ArchiveLimits:
    """What a source archive may unpack to (PORTAL_SOURCE_MAX_ENTRIES, _MAX_UNPACKED_BYTES)."""
    return ArchiveLimits(
        max_entries=int(settings.PORTAL_SOURCE_MAX_ENTRIES),
        max_bytes=int(settings.PORTAL_SOURCE_MAX_UNPACKED_BYTES),
    )


def build_command(command: Any) -> list[str]:
    """The argv of a build: a list of strings as it is, a string as `/bin/sh -c <string>`.

    Raises:
        ValidationError: empty, not strings, NUL bytes, or too long.
    """
    if isinstance(command, str):
        if not command.strip():
            raise ValidationError(
                {"command": gettext_lazy("Give the build command (a list or a string).")}
            )
        argv = ["/bin/sh", "-c", command]
    elif isinstance(command, list | tuple) and command:
        if not all(isinstance(item, str) for item in command):
            raise ValidationError(
                {"command": gettext_lazy("The command must be a list of strings.")}
            )
        argv = list(command)
        if not argv[0]:
            raise ValidationError(
                {"command": gettext_lazy("The command's program (first item) is empty.")}
            )
    else:
        raise ValidationError(
            {
                "command": gettext(
                    "Give the build command: a non-empty list of strings, or a string."
                )
            }
        )
    if any("\0" in item for item in argv):
        raise ValidationError({"command": gettext_lazy("The command contains a NUL byte.")})
    if len(argv) > MAX_COMMAND_ARGS or sum(len(item) for item in argv) > MAX_COMMAND_BYTES:
        raise ValidationError(
            {
                "command": gettext(
                    "The command is too long (at most %(max_args)s arguments, 64 KiB)."
                )
                % {"max_args": MAX_COMMAND_ARGS}
            }
        )
    return argv


def check_output_path(path: Any) -> str:
    """A relative path under /out without `..` (`bin/app`).

    Raises:
        ValidationError: absolute, `..`, empty or odd characters.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValidationError(
            {"output_path": gettext_lazy("Give the output's path under /out (e.g. app).")}
        )
    text: str = path.strip()
    path = text
    if path.startswith("/"):
        raise ValidationError(
            {
                "output_path": gettext(
                    "%(path)r is absolute: give a path relative to /out (e.g. app)."
                )
                % {"path": path}
            }
        )
    parts = path.split("/")
    if ".." in parts or "." in parts or "" in parts:
        raise ValidationError(
            {
                "output_path": gettext(
                    "%(path)r must stay under /out: no '..', '.' or empty segments."
                )
                % {"path": path}
            }
        )
    if not _OUTPUT_PATH.match(path):
        raise ValidationError(
            {
                "output_path": gettext("%(path)r: use letters, digits and . _ + - / (at most 300).")
                % {"path": path}
            }
        )
    return text


def build_image_check(build_version_id: Any) -> ImageVersion:
    """The approved build image version `build_version_id`, or 400 "not an approved build
    image" (missing, a runtime image, or not approved)."""
    version = None
    if isinstance(build_version_id, int) or (
        isinstance(build_version_id, str) and build_version_id.strip().isdigit()
    ):
        version = (
            ImageVersion.objects.select_related("base_image", "registry")
            .filter(pk=int(build_version_id))
            .first()
        )
    if version is None:
        raise ValidationError(
            {
                "build_image_version": gettext(
                    "%(build_version_id)r is not an approved build image: no such image version."
                )
                % {"build_version_id": build_version_id}
            }
        )
    if version.base_image.kind != ImageKind.BUILD:
        raise ValidationError(
            {
                "build_image_version": gettext(
                    "%(version)s is not an approved build image: it is a %(kind)s image; compile "
                    "in a build image (build/...)."
                )
                % {"version": version, "kind": status_label(version.base_image.kind)}
            }
        )
    if version.state != VersionState.APPROVED:
        raise ValidationError(
            {
                "build_image_version": gettext(
                    "%(version)s is not an approved build image: it is %(state)s."
                )
                % {"version": version, "state": status_label(version.state)}
            }
        )
    return version
