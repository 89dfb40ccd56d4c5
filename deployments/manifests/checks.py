"""Checks of the input values: every problem is collected as a message naming the field.

`_check_input` checks a whole `ManifestInput`; the ``_check_*`` helpers append to an error
list and are shared by the renderers that take plain arguments (DaemonSet, Dockerfile). Every
message is an `images.texts.Text`: the English sentence (what logs and the API's stored errors
show), which the portal renders in the reader's language (`message_render`).
"""

from __future__ import annotations

import posixpath
import re
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from images.texts import _

from .inputs import _ARCH_TO_GOARCH, STRATEGIES, ManifestInput

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?\Z")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_PINNED_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+)"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"@(?P<digest>sha256:[0-9a-f]{64})\Z"
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*\Z")
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[A-Za-z]{0,2})\Z")
_QUANTITY_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_K8S_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?\Z")


def _quantity(value: str) -> Decimal | None:
    match = _QUANTITY.match(value)
    if match is None or match.group("suffix") not in _QUANTITY_SUFFIX:
        return None
    try:
        return Decimal(match.group("number")) * _QUANTITY_SUFFIX[match.group("suffix")]
    except InvalidOperation:
        return None


def _k8s_minor(version: str) -> tuple[int, int] | None:
    match = _K8S_VERSION.match(version.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def _check_url(errors: list[str], field: str, url: str, *, required: bool) -> None:
    if not url:
        if required:
            errors.append(_("%(field)s is required", field=field))
        return
    parts = urlsplit(url)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.netloc
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url)
    ):
        errors.append(
            _("%(field)s must be an http(s) URL without spaces or control characters", field=field)
        )


def _check_path(errors: list[str], field: str, path: str) -> None:
    if not _PATH.match(path) or posixpath.normpath(path) != path or path == "/":
        errors.append(
            _(
                "%(field)s must be an absolute, normalised path of letters, digits and ._-/ "
                "(not '/'), got %(value)s",
                field=field,
                value=repr(path),
            )
        )


# The node directories a hostPath root may not be. The sync DaemonSet runs as root on every
# node and replaces `<root>/<service>/<version>`, with names a service team chooses, so the
# root must be a directory of the portal's own. Refused with everything under them: the
# system's programs, libraries, configuration, kernel interfaces, run-time and kubelet state,
# logs, home and scratch directories (and /lib, /lib32, /lib64, /libx32, /libexec).
_SYSTEM_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/nix",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/sys",
    "/tmp",  # noqa: S108 - a path refused, not a temp file
    "/usr",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/run",
    "/var/spool",
    "/var/tmp",  # noqa: S108 - a path refused, not a temp file
)
_SYSTEM_LIB = re.compile(r"^/lib(?:32|64|x32|exec)?(?:/|$)")
# Shared parents refused as the root itself only: other software keeps its own directories
# in them, but a dedicated directory below (/opt/portal-bin, /srv/bin, /mnt/disk1/bin) is fine.
_SHARED_PARENTS = ("/", "/data", "/media", "/mnt", "/opt", "/srv", "/var")
HOSTPATH_ROOT_EXAMPLES = "/data/bin or /opt/portal-bin"


def hostpath_root_errors(path: str, field: str = "hostpath_root") -> list[str]:
    """Why `path` cannot be the node directory of hostPath binaries ([] when it can).

    The rules: an absolute, normalised path (no `..`, `.`, `//` or trailing `/`); not a
    shared parent (`/`, `/var`, `/opt` …) itself; nowhere under a system directory (`/etc`,
    `/usr`, `/var/lib` …). Each message names the rule it breaks.
    """
    errors: list[str] = []
    _check_path(errors, field, path)
    if errors:
        return errors
    tree = next((t for t in _SYSTEM_TREES if path == t or path.startswith(t + "/")), None)
    if tree is None and _SYSTEM_LIB.match(path):
        tree = "/" + path.split("/")[1]
    if tree is not None:
        where = (
            _("is a system directory")
            if path == tree
            else _("is under the system directory %(tree)s", tree=tree)
        )
        errors.append(
            _(
                "%(field)s must not be a system directory or lie under one: %(value)s %(where)s, "
                "and the sync DaemonSet replaces <root>/<service>/<version> in it on every node "
                "as root. Use a directory of its own, such as %(examples)s.",
                field=field,
                value=repr(path),
                where=where,
                examples=HOSTPATH_ROOT_EXAMPLES,
            )
        )
    elif path in _SHARED_PARENTS:
        errors.append(
            _(
                "%(field)s must not be the shared directory %(value)s itself: other software "
                "keeps directories there, and the sync DaemonSet replaces "
                "<root>/<service>/<version> in it on every node as root. Use a directory of its "
                "own below it, such as %(examples)s.",
                field=field,
                value=repr(path),
                examples=HOSTPATH_ROOT_EXAMPLES,
            )
        )
    return errors


def _check_hostpath_root(errors: list[str], field: str, path: str) -> None:
    errors.extend(hostpath_root_errors(path, field))


def _check_pinned(errors: list[str], field: str, ref: str) -> None:
    if not _PINNED_IMAGE.match(ref):
        errors.append(
            _(
                "%(field)s must be a digest-pinned reference like "
                "registry.example.com/team/image@sha256:<64 hex>, got %(value)s",
                field=field,
                value=repr(ref),
            )
        )


def _check_text(errors: list[str], field: str, value: object) -> None:
    if not isinstance(value, str):
        errors.append(
            _("%(field)s must be a string, got %(type)s", field=field, type=type(value).__name__)
        )
    elif "\x00" in value:
        errors.append(_("%(field)s must not contain NUL characters", field=field))


def resource_errors(
    *, cpu_request: str = "", memory_request: str = "", cpu_limit: str = "", memory_limit: str = ""
) -> list[str]:
    """Problems with requests/limits ("" = not set): bad quantities, a limit below its request.
    Each is an `images.texts.Text` (English; the portal renders it in the reader's language)."""
    values = {
        "cpu_request": cpu_request,
        "memory_request": memory_request,
        "cpu_limit": cpu_limit,
        "memory_limit": memory_limit,
    }
    errors: list[str] = []
    for kind in ("cpu", "memory"):
        parsed = {}
        for field in (f"{kind}_request", f"{kind}_limit"):
            value = values[field]
            if value == "":
                continue
            amount = _quantity(value) if isinstance(value, str) else None
            if amount is None:
                errors.append(
                    _(
                        "%(field)s must be a Kubernetes quantity such as 250m, 1, 512Mi, 2Gi, "
                        "got %(value)s",
                        field=field,
                        value=repr(value),
                    )
                )
            else:
                parsed[field] = amount
        if len(parsed) == 2 and parsed[f"{kind}_limit"] < parsed[f"{kind}_request"]:
            errors.append(
                _(
                    "%(limit_field)s %(limit)s is below %(request_field)s %(request)s",
                    limit_field=f"{kind}_limit",
                    limit=values[f"{kind}_limit"],
                    request_field=f"{kind}_request",
                    request=values[f"{kind}_request"],
                )
            )
    return errors


def _check_input(m: ManifestInput) -> list[str]:
    errors: list[str] = []
    for field in ("service", "environment", "namespace"):
        value = getattr(m, field)
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            errors.append(
                _(
                    "%(field)s must be a DNS-1123 label (lowercase letters, digits, '-', "
                    "at most 63 characters), got %(value)s",
                    field=field,
                    value=repr(value),
                )
            )
    if not _LABEL_VALUE.match(m.team) or not m.team:
        errors.append(
            _(
                "team must be a valid label value (at most 63 characters), got %(value)s",
                value=repr(m.team),
            )
        )
    if not errors and len(f"{m.service}-{m.environment}") > 63:
        errors.append(_("service and environment names together exceed 62 characters"))
    if isinstance(m.release, bool) or not isinstance(m.release, int) or m.release < 1:
        errors.append(_("release must be a positive integer, got %(value)s", value=repr(m.release)))
    if m.strategy not in STRATEGIES:
        errors.append(
            _(
                "strategy must be one of %(choices)s, got %(value)s",
                choices=", ".join(STRATEGIES),
                value=repr(m.strategy),
            )
        )
    _check_pinned(errors, "runtime_image", m.runtime_image)
    if not _VERSION.match(m.binary_version):
        errors.append(
            _(
                "binary_version must be 1-128 letters, digits and ._+- starting with a letter or "
                "digit, got %(value)s",
                value=repr(m.binary_version),
            )
        )
    if not _SHA256.match(m.binary_sha256):
        errors.append(
            _(
                "binary_sha256 must be 64 lowercase hex digits, got %(value)s",
                value=repr(m.binary_sha256),
            )
        )
    if not _FILENAME.match(m.binary_filename):
        errors.append(
            _(
                "binary_filename must be a plain file name (letters, digits, ._+-, no '/'), "
                "got %(value)s",
                value=repr(m.binary_filename),
            )
        )
    _check_url(
        errors,
        "binary_download_url",
        m.binary_download_url,
        required=m.strategy in {"hostPath", "initFetch"},
    )
    _check_url(errors, "portal_url", m.portal_url, required=False)
    if m.strategy == "initFetch":
        _check_secret_name(errors, "fetch_token_secret", m.fetch_token_secret)
    if m.strategy == "imageVolume":
        _check_pinned(errors, "binary_artifact_ref", m.binary_artifact_ref)
    if m.strategy == "image":
        _check_pinned(errors, "app_image", m.app_image)
    for index, item in enumerate(m.command):
        _check_text(errors, f"command[{index}]", item)
    for index, item in enumerate(m.args):
        _check_text(errors, f"args[{index}]", item)
    seen: set[str] = set()
    for index, pair in enumerate(m.env):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            errors.append(_("env[%(index)s] must be a (name, value) pair", index=index))
            continue
        name, value = pair
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            errors.append(
                _(
                    "env[%(index)s] name must match [-._a-zA-Z][-._a-zA-Z0-9]*, got %(value)s",
                    index=index,
                    value=repr(name),
                )
            )
        elif name in seen:
            errors.append(_("env name %(name)s appears twice", name=repr(name)))
        seen.add(name if isinstance(name, str) else "")
        _check_text(errors, f"env {name!r} value", value)
    if len(set(m.ports)) != len(m.ports):
        errors.append(_("ports must not repeat"))
    for port in m.ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            errors.append(_("ports must be integers 1-65535, got %(value)s", value=repr(port)))
    if isinstance(m.replicas, bool) or not isinstance(m.replicas, int) or m.replicas < 0:
        errors.append(_("replicas must be an integer >= 0, got %(value)s", value=repr(m.replicas)))
    errors.extend(
        resource_errors(
            cpu_request=m.cpu_request,
            memory_request=m.memory_request,
            cpu_limit=m.cpu_limit,
            memory_limit=m.memory_limit,
        )
    )
    _check_hostpath_root(errors, "hostpath_root", m.hostpath_root)
    _check_path(errors, "mount_path", m.mount_path)
    if m.mount_path == "/tmp":  # noqa: S108 - a path compared, not a temp file
        errors.append(_("mount_path must not be /tmp (the pod's scratch space)"))
    if m.arch and m.arch not in _ARCH_TO_GOARCH:
        errors.append(
            _(
                "arch %(arch)s is not one of %(choices)s",
                arch=repr(m.arch),
                choices=", ".join(sorted(_ARCH_TO_GOARCH)),
            )
        )
    return errors


def _check_secret_name(errors: list[str], field: str, name: object) -> None:
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append(
            _(
                "%(field)s must be a Secret name (DNS-1123 subdomain: lowercase letters, digits, "
                "'-' and '.', at most 253 characters), got %(value)s",
                field=field,
                value=repr(name),
            )
        )
