"""Kubernetes manifest and Dockerfile renderers for a release (pure: plain values in, text out).

Volume mode keeps the approved runtime base image unchanged and brings the service's
binary to it in one of three ways (`ManifestInput.strategy`):

* ``hostPath`` — the standard's example: the node path ``<root>/<service>/<version>`` is
  mounted read-only; a DaemonSet per environment (`render_hostpath_daemonset`) keeps those
  paths filled from the portal's download endpoint and verifies every sha256.
* ``initFetch`` — an init container (the same approved runtime image) downloads the binary
  into an ``emptyDir`` and verifies its sha256 before the application starts.
* ``imageVolume`` — the binary is an OCI artifact mounted with ``volumes[].image``
  (Kubernetes 1.35 or newer).

Image mode (``image``) gets a Dockerfile (`render_app_dockerfile`) and a Deployment that
runs the app image.

Every value is checked before anything is rendered; a bad value raises `ManifestError`
naming the field. Shell scripts in the manifests are constants: values reach them only
through environment variables or a data file, never by text substitution.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import yaml

__all__ = [
    "DEFAULT_ARGS",
    "FETCH_TOKEN_ENV",
    "FETCH_TOKEN_KEY",
    "FETCH_TOKEN_SECRET",
    "IMAGE_VOLUME_MIN_K8S",
    "STRATEGIES",
    "DaemonSetEntry",
    "ManifestError",
    "ManifestInput",
    "fetch_script",
    "render_app_dockerfile",
    "render_deployment",
    "render_hostpath_daemonset",
    "resource_errors",
    "sync_script",
    "to_yaml",
]

STRATEGIES = ("hostPath", "initFetch", "imageVolume", "image")
DEFAULT_ARGS = ("-m", "release")
IMAGE_VOLUME_MIN_K8S = (1, 35)
RUN_AS_USER = 65532
MANAGED_BY = "base-image-portal"
ANNOTATION_RELEASE = "baseimage.portal/release"
ANNOTATION_PORTAL = "baseimage.portal/url"
LABEL_ENVIRONMENT = "baseimage.portal/environment"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PINNED_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+)"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*$")
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[A-Za-z]{0,2})$")
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
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_K8S_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?$")

# The download endpoint needs a token with binaries:read: the DaemonSet and the init container
# read it from this Secret (created by the platform admin, never rendered with a value).
FETCH_TOKEN_SECRET = "portal-fetch-token"  # noqa: S105 - a Secret's name, not a secret
FETCH_TOKEN_KEY = "token"  # noqa: S105 - the Secret's key name
FETCH_TOKEN_ENV = "PORTAL_TOKEN"  # noqa: S105 - an environment variable's name

# The DaemonSet / init container see these paths inside their own filesystem.
_SYNC_CONFIG_DIR = "/etc/binary-sync"
_SYNC_HOST_DIR = "/host-bin"
_FETCH_DIR = "/fetched"


class ManifestError(ValueError):
    """The values cannot produce a correct manifest; `errors` lists every problem."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True, kw_only=True)
class ManifestInput:
    """Everything one release's Deployment is rendered from (plain values, no ORM).

    Attributes:
        service: DNS-1123 label; the Deployment and container name.
        team: owning team (``app.kubernetes.io/part-of``).
        environment: DNS-1123 label (dev, staging, prod ...).
        namespace: Kubernetes namespace.
        release: release number (>= 1).
        strategy: "hostPath", "initFetch", "imageVolume" or "image".
        runtime_image: approved runtime base image, digest-pinned
            (``registry/repo@sha256:...``).
        binary_version / binary_sha256 / binary_filename: the binary version to run.
        binary_download_url: portal download URL (hostPath DaemonSet, initFetch).
        binary_artifact_ref: digest-pinned OCI artifact holding the binary (imageVolume).
        app_image: digest-pinned application image (image mode).
        command: overrides the default command ``[<mount_path>/<binary_filename>]``
            (e.g. ``("java", "-jar", "/opt/app/app.jar")``).
        args: arguments, the standard's ``-m release`` by default.
        env: (name, value) pairs in order.
        ports: container ports (TCP).
        arch: binary architecture in ``uname -m`` spelling; sets a
            ``kubernetes.io/arch`` node selector when known.
        fetch_token_secret: name of the Secret (key ``token``) holding the portal token
            the initFetch container downloads with (``Authorization: Bearer``).
    """

    service: str
    team: str
    environment: str
    namespace: str
    release: int
    strategy: str
    runtime_image: str
    binary_version: str
    binary_sha256: str
    binary_filename: str
    binary_download_url: str = ""
    binary_artifact_ref: str = ""
    app_image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = DEFAULT_ARGS
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[int, ...] = ()
    replicas: int = 1
    cpu_request: str = ""
    memory_request: str = ""
    cpu_limit: str = ""
    memory_limit: str = ""
    hostpath_root: str = "/data/bin"
    mount_path: str = "/opt/app"
    portal_url: str = ""
    arch: str = ""
    fetch_token_secret: str = FETCH_TOKEN_SECRET


DaemonSetEntry = tuple[str, str, str, str, str]
"""(service, version, sha256, download_url, filename) of one binary the nodes must hold."""

_ARCH_TO_GOARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm": "arm",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
}


# --- YAML -------------------------------------------------------------------------------


class _Literal(str):
    """A multi-line text (script, data file) emitted in literal block style when possible."""

    __slots__ = ()


# Plain (unquoted) only for strings nobody's YAML parser can read as anything but a string:
# starts with a letter or '/', no ': ' or ' #', and not a YAML 1.1 / 1.2 keyword.
_PLAIN_SAFE = re.compile(r"^[A-Za-z/][A-Za-z0-9._/@:+-]*$")
_YAML_KEYWORDS = frozenset(
    "y n yes no on off true false null nan inf".split()  # go-yaml v2 reads y/n as booleans
)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that never lets a string be re-read as another type by any YAML reader."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent sequences inside mappings (kubectl style) instead of PyYAML's flush style.
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    tag = "tag:yaml.org,2002:str"
    if isinstance(value, _Literal) and "\n" in value:
        return dumper.represent_scalar(tag, str(value), style="|")
    if (
        _PLAIN_SAFE.match(value)
        and value.lower() not in _YAML_KEYWORDS
        and not value.endswith(":")
        and dumper.resolve(yaml.ScalarNode, value, (True, False)) == tag
    ):
        return dumper.represent_scalar(tag, value)
    printable_ascii = all(" " <= char <= "~" for char in value)
    return dumper.represent_scalar(tag, value, style="'" if printable_ascii else '"')


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Literal, _represent_str)


def to_yaml(documents: Iterable[dict[str, Any]]) -> str:
    """Serialise Kubernetes objects as multi-document YAML, keys in insertion order."""
    return yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        width=4096,
    )


# --- shell scripts (constants; values come from the environment or a data file) -------------

_FETCH_FUNCTIONS = r"""
fail() {
  echo "$PROG: $*" >&2
  return 1
}

# check_entry SERVICE VERSION SHA256 FILENAME URL: refuse anything that could escape the
# target directory or reach a non-HTTP URL, whatever the renderer let through.
check_entry() {
  case "$1" in '' | . | .. | */* | -* | .*) fail "refusing service name: $1"; return 1 ;; esac
  case "$2" in '' | . | .. | */* | -* | .*) fail "refusing version: $2"; return 1 ;; esac
  case "$4" in '' | . | .. | */* | -* | .*) fail "refusing file name: $4"; return 1 ;; esac
  case "$3" in *[!0-9a-f]* | '') fail "refusing sha256: $3"; return 1 ;; esac
  [ "${#3}" -eq 64 ] || { fail "refusing sha256 (not 64 hex digits): $3"; return 1; }
  case "$5" in http://* | https://*) ;; *) fail "refusing URL: $5"; return 1 ;; esac
}

# check_token: PORTAL_TOKEN (from the fetch-token Secret) is set and fits in one header.
check_token() {
  if [ -z "${PORTAL_TOKEN:-}" ]; then
    fail "PORTAL_TOKEN is empty: create the fetch-token Secret (key 'token') in this namespace;" \
      "the portal's environment page shows the kubectl command"
    return 1
  fi
  case "$PORTAL_TOKEN" in
    *[!A-Za-z0-9._~+/=-]*)
      fail "PORTAL_TOKEN holds characters a bearer token cannot contain"
      return 1 ;;
  esac
}

# fetch URL FILE: download with curl, or wget when the image has no curl, sending the
# portal token as "Authorization: Bearer" (curl reads it from stdin, not the command line).
fetch() {
  if command -v curl >/dev/null 2>&1; then
    code=$(printf 'header = "Authorization: Bearer %s"\n' "$PORTAL_TOKEN" | curl --config - \
      --fail --silent --show-error --location --retry 3 --connect-timeout 10 \
      --max-time "${FETCH_TIMEOUT:-900}" --output "$2" --write-out '%{http_code}' \
      --url "$1") && return 0
    refused "$1" "$code"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -T 60 --header="Authorization: Bearer $PORTAL_TOKEN" -O "$2" -- "$1" </dev/null \
      && return 0
    wget_status=$?
    if [ "$wget_status" -eq 6 ]; then
      refused "$1" 401
    else
      fail "wget failed (exit $wget_status) for $1"
    fi
  else
    fail "neither curl nor wget is available in this image"
  fi
}

# refused URL HTTP_STATUS: explain a refused download.
refused() {
  case "$2" in
    401 | 403)
      fail "the portal refused PORTAL_TOKEN (HTTP $2) for $1: check the fetch-token Secret;" \
        "its token must be live and have the binaries:read scope" ;;
    000 | '') fail "no HTTP response from $1" ;;
    *) fail "HTTP $2 from $1" ;;
  esac
}

# verify SHA256 FILE: sha256sum -c against the expected digest.
verify() {
  if printf '%s  %s\n' "$1" "$2" | sha256sum -c - >/dev/null 2>&1; then
    return 0
  fi
  actual=$(sha256sum "$2" 2>/dev/null | cut -d ' ' -f 1)
  fail "sha256 mismatch for $2: expected $1, got ${actual:-nothing}"
}
"""

_FETCH_SCRIPT = (
    r"""#!/bin/sh
# Init container: download the release's binary into the shared emptyDir, verify it, and
# make it executable. Inputs: BINARY_URL BINARY_SHA256 BINARY_FILENAME DEST_DIR PORTAL_TOKEN.
set -eu
umask 022
PROG=binary-fetch
"""
    + _FETCH_FUNCTIONS
    + r"""
: "${BINARY_URL:?}" "${BINARY_SHA256:?}" "${BINARY_FILENAME:?}" "${DEST_DIR:?}"
check_token || exit 2
check_entry fetch current "$BINARY_SHA256" "$BINARY_FILENAME" "$BINARY_URL" || exit 2
part="$DEST_DIR/.$BINARY_FILENAME.part"
rm -f "$part"
if ! fetch "$BINARY_URL" "$part"; then
  rm -f "$part"
  fail "download failed: $BINARY_URL"
  exit 1
fi
if ! verify "$BINARY_SHA256" "$part"; then
  rm -f "$part"
  exit 1
fi
chmod 0555 "$part"
mv -f "$part" "$DEST_DIR/$BINARY_FILENAME"
echo "$PROG: $BINARY_FILENAME verified (sha256 $BINARY_SHA256)"
"""
)

_SYNC_SCRIPT = (
    r"""#!/bin/sh
# DaemonSet: keep <HOSTPATH_ROOT>/<service>/<version>/<file> present and verified on this
# node for every line of ENTRIES_FILE (tab-separated: service version sha256 file url),
# downloading with the portal token in PORTAL_TOKEN.
# A version directory appears only once its file is complete and verified (atomic rename).
# SYNC_ONCE=1 runs one pass and exits non-zero if any entry failed.
set -eu
umask 022
PROG=binary-sync
"""
    + _FETCH_FUNCTIONS
    + r"""
: "${HOSTPATH_ROOT:?}" "${ENTRIES_FILE:?}"
check_token || exit 2
TAB=$(printf '\t')

sync_one() {
  check_entry "$1" "$2" "$3" "$4" "$5" || return 1
  dir="$HOSTPATH_ROOT/$1/$2"
  if [ -f "$dir/$4" ] && verify "$3" "$dir/$4" 2>/dev/null; then
    return 0
  fi
  stage="$HOSTPATH_ROOT/.staging/$1.$2.$$"
  rm -rf "$stage" && mkdir -p "$stage" || { fail "cannot create $stage"; return 1; }
  if ! fetch "$5" "$stage/$4"; then
    rm -rf "$stage"
    fail "download failed for $1 $2: $5"
    return 1
  fi
  if ! verify "$3" "$stage/$4"; then
    rm -rf "$stage"
    return 1
  fi
  chmod 0555 "$stage/$4" && chmod 0755 "$stage" && mkdir -p "$HOSTPATH_ROOT/$1" \
    || { rm -rf "$stage"; fail "cannot prepare $dir"; return 1; }
  if [ -e "$dir" ]; then
    rm -rf "$dir" || { fail "cannot replace $dir"; return 1; }
  fi
  mv "$stage" "$dir" || { rm -rf "$stage"; fail "cannot install $dir"; return 1; }
  echo "$PROG: installed $1 $2 ($3)"
}

sync_all() {
  status=0
  while IFS="$TAB" read -r service version sha256 file url; do
    case "$service" in '' | '#'*) continue ;; esac
    sync_one "$service" "$version" "$sha256" "$file" "${url:-}" || status=1
  done <"$ENTRIES_FILE"
  return "$status"
}

while :; do
  if sync_all; then result=0; else result=1; fi
  if [ "${SYNC_ONCE:-0}" = 1 ]; then
    exit "$result"
  fi
  sleep "${SYNC_INTERVAL:-60}"
done
"""
)


def fetch_script() -> str:
    """The init container's download-and-verify script (POSIX sh)."""
    return _FETCH_SCRIPT


def sync_script() -> str:
    """The hostPath DaemonSet's sync script (POSIX sh)."""
    return _SYNC_SCRIPT


# --- validation of input values -----------------------------------------------------------


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
            errors.append(f"{field} is required")
        return
    parts = urlsplit(url)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.netloc
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url)
    ):
        errors.append(f"{field} must be an http(s) URL without spaces or control characters")


def _check_path(errors: list[str], field: str, path: str) -> None:
    if not _PATH.match(path) or posixpath.normpath(path) != path or path == "/":
        errors.append(
            f"{field} must be an absolute, normalised path of letters, digits and ._-/ "
            f"(not '/'), got {path!r}"
        )


def _check_pinned(errors: list[str], field: str, ref: str) -> None:
    if not _PINNED_IMAGE.match(ref):
        errors.append(
            f"{field} must be a digest-pinned reference like "
            f"registry.example.com/team/image@sha256:<64 hex>, got {ref!r}"
        )


def _check_text(errors: list[str], field: str, value: object) -> None:
    if not isinstance(value, str):
        errors.append(f"{field} must be a string, got {type(value).__name__}")
    elif "\x00" in value:
        errors.append(f"{field} must not contain NUL characters")


def resource_errors(
    *, cpu_request: str = "", memory_request: str = "", cpu_limit: str = "", memory_limit: str = ""
) -> list[str]:
    """Problems with requests/limits ("" = not set): bad quantities, a limit below its request."""
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
                    f"{field} must be a Kubernetes quantity such as 250m, 1, 512Mi, 2Gi, "
                    f"got {value!r}"
                )
            else:
                parsed[field] = amount
        if len(parsed) == 2 and parsed[f"{kind}_limit"] < parsed[f"{kind}_request"]:
            errors.append(
                f"{kind}_limit {values[kind + '_limit']} is below "
                f"{kind}_request {values[kind + '_request']}"
            )
    return errors


def _check_input(m: ManifestInput) -> list[str]:
    errors: list[str] = []
    for field in ("service", "environment", "namespace"):
        value = getattr(m, field)
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            errors.append(
                f"{field} must be a DNS-1123 label (lowercase letters, digits, '-', "
                f"at most 63 characters), got {value!r}"
            )
    if not _LABEL_VALUE.match(m.team) or not m.team:
        errors.append(f"team must be a valid label value (at most 63 characters), got {m.team!r}")
    if not errors and len(f"{m.service}-{m.environment}") > 63:
        errors.append("service and environment names together exceed 62 characters")
    if isinstance(m.release, bool) or not isinstance(m.release, int) or m.release < 1:
        errors.append(f"release must be a positive integer, got {m.release!r}")
    if m.strategy not in STRATEGIES:
        errors.append(f"strategy must be one of {', '.join(STRATEGIES)}, got {m.strategy!r}")
    _check_pinned(errors, "runtime_image", m.runtime_image)
    if not _VERSION.match(m.binary_version):
        errors.append(
            "binary_version must be 1-128 letters, digits and ._+- starting with a letter or "
            f"digit, got {m.binary_version!r}"
        )
    if not _SHA256.match(m.binary_sha256):
        errors.append(f"binary_sha256 must be 64 lowercase hex digits, got {m.binary_sha256!r}")
    if not _FILENAME.match(m.binary_filename):
        errors.append(
            "binary_filename must be a plain file name (letters, digits, ._+-, no '/'), "
            f"got {m.binary_filename!r}"
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
            errors.append(f"env[{index}] must be a (name, value) pair")
            continue
        name, value = pair
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            errors.append(f"env[{index}] name must match [-._a-zA-Z][-._a-zA-Z0-9]*, got {name!r}")
        elif name in seen:
            errors.append(f"env name {name!r} appears twice")
        seen.add(name if isinstance(name, str) else "")
        _check_text(errors, f"env {name!r} value", value)
    if len(set(m.ports)) != len(m.ports):
        errors.append("ports must not repeat")
    for port in m.ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            errors.append(f"ports must be integers 1-65535, got {port!r}")
    if isinstance(m.replicas, bool) or not isinstance(m.replicas, int) or m.replicas < 0:
        errors.append(f"replicas must be an integer >= 0, got {m.replicas!r}")
    errors.extend(
        resource_errors(
            cpu_request=m.cpu_request,
            memory_request=m.memory_request,
            cpu_limit=m.cpu_limit,
            memory_limit=m.memory_limit,
        )
    )
    _check_path(errors, "hostpath_root", m.hostpath_root)
    _check_path(errors, "mount_path", m.mount_path)
    if m.mount_path == "/tmp":  # noqa: S108 - a path compared, not a temp file
        errors.append("mount_path must not be /tmp (the pod's scratch space)")
    if m.arch and m.arch not in _ARCH_TO_GOARCH:
        errors.append(f"arch {m.arch!r} is not one of {', '.join(sorted(_ARCH_TO_GOARCH))}")
    return errors


# --- building blocks ----------------------------------------------------------------------


def _label_value(value: str) -> str:
    """Squeeze any string into a valid label value (binary versions may contain '+')."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value)[:63]
    return cleaned.strip("._-")


def _labels(m: ManifestInput) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": m.service,
        "app.kubernetes.io/instance": f"{m.service}-{m.environment}",
        "app.kubernetes.io/version": _label_value(m.binary_version),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": m.team,
        LABEL_ENVIRONMENT: m.environment,
    }


def _selector(m: ManifestInput) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": m.service,
        "app.kubernetes.io/instance": f"{m.service}-{m.environment}",
    }


def _annotations(m: ManifestInput) -> dict[str, str]:
    release = {
        "release": m.release,
        "strategy": m.strategy,
        "binaryVersion": m.binary_version,
        "binarySha256": m.binary_sha256,
        "baseImage": m.runtime_image,
        "baseDigest": m.runtime_image.rsplit("@", 1)[1],
    }
    if m.strategy == "imageVolume":
        release["binaryArtifact"] = m.binary_artifact_ref
    if m.strategy == "image":
        release["appImage"] = m.app_image
    annotations = {ANNOTATION_RELEASE: json.dumps(release, separators=(",", ":"))}
    if m.portal_url:
        annotations[ANNOTATION_PORTAL] = m.portal_url
    return annotations


def _container_security(*, user: int = RUN_AS_USER) -> dict[str, Any]:
    return {
        "runAsNonRoot": user != 0,
        "runAsUser": user,
        "runAsGroup": user,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security(*, user: int = RUN_AS_USER) -> dict[str, Any]:
    security: dict[str, Any] = {
        "runAsNonRoot": user != 0,
        "runAsUser": user,
        "runAsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if user != 0:
        security["fsGroup"] = user
    return security


def _resources(m: ManifestInput) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    requests = {k: v for k, v in (("cpu", m.cpu_request), ("memory", m.memory_request)) if v}
    limits = {k: v for k, v in (("cpu", m.cpu_limit), ("memory", m.memory_limit)) if v}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _app_container(m: ManifestInput, *, image: str) -> dict[str, Any]:
    command = list(m.command) or [f"{m.mount_path}/{m.binary_filename}"]
    container: dict[str, Any] = {
        "name": m.service,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "args": list(m.args),
    }
    if m.env:
        container["env"] = [{"name": name, "value": value} for name, value in m.env]
    if m.ports:
        container["ports"] = [{"containerPort": port, "protocol": "TCP"} for port in m.ports]
    resources = _resources(m)
    if resources:
        container["resources"] = resources
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - the pod's own emptyDir
    if m.strategy != "image":
        mounts.insert(0, {"name": "binary", "mountPath": m.mount_path, "readOnly": True})
    container["volumeMounts"] = mounts
    container["securityContext"] = _container_security()
    return container


def _token_env(secret_name: str) -> dict[str, Any]:
    """PORTAL_TOKEN from the fetch-token Secret (the pod does not start until it exists)."""
    return {
        "name": FETCH_TOKEN_ENV,
        "valueFrom": {"secretKeyRef": {"name": secret_name, "key": FETCH_TOKEN_KEY}},
    }


def _check_secret_name(errors: list[str], field: str, name: object) -> None:
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append(
            f"{field} must be a Secret name (DNS-1123 subdomain: lowercase letters, digits, "
            f"'-' and '.', at most 253 characters), got {name!r}"
        )


def _fetch_init_container(m: ManifestInput) -> dict[str, Any]:
    return {
        "name": "fetch-binary",
        "image": m.runtime_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", _Literal(_FETCH_SCRIPT)],
        "env": [
            {"name": "BINARY_URL", "value": m.binary_download_url},
            {"name": "BINARY_SHA256", "value": m.binary_sha256},
            {"name": "BINARY_FILENAME", "value": m.binary_filename},
            {"name": "DEST_DIR", "value": _FETCH_DIR},
            _token_env(m.fetch_token_secret),
        ],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "volumeMounts": [{"name": "binary", "mountPath": _FETCH_DIR}],
        "securityContext": _container_security(),
    }


def _binary_volume(m: ManifestInput) -> dict[str, Any]:
    if m.strategy == "hostPath":
        path = f"{m.hostpath_root}/{m.service}/{m.binary_version}"
        return {"name": "binary", "hostPath": {"path": path, "type": "Directory"}}
    if m.strategy == "initFetch":
        return {"name": "binary", "emptyDir": {"sizeLimit": "4Gi"}}
    return {
        "name": "binary",
        "image": {"reference": m.binary_artifact_ref, "pullPolicy": "IfNotPresent"},
    }


# --- renderers ----------------------------------------------------------------------------


def deployment_object(m: ManifestInput, *, k8s_version: str) -> dict[str, Any]:
    """The Deployment as a dict (what `render_deployment` serialises)."""
    errors = _check_input(m)
    minor = _k8s_minor(k8s_version) if isinstance(k8s_version, str) else None
    if minor is None:
        errors.append(f"k8s_version must look like 1.33 or v1.33.2, got {k8s_version!r}")
    elif m.strategy == "imageVolume" and minor < IMAGE_VOLUME_MIN_K8S:
        errors.append(
            f"strategy imageVolume is not available: image volumes need Kubernetes "
            f"{IMAGE_VOLUME_MIN_K8S[0]}.{IMAGE_VOLUME_MIN_K8S[1]} or newer; environment "
            f"{m.environment} targets {minor[0]}.{minor[1]}. Use hostPath or initFetch there."
        )
    if errors:
        raise ManifestError(errors)

    labels = _labels(m)
    annotations = _annotations(m)
    image = m.app_image if m.strategy == "image" else m.runtime_image
    volumes: list[dict[str, Any]] = []
    if m.strategy != "image":
        volumes.append(_binary_volume(m))
    volumes.append({"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}})

    pod_spec: dict[str, Any] = {"automountServiceAccountToken": False}
    if m.arch:
        pod_spec["nodeSelector"] = {"kubernetes.io/arch": _ARCH_TO_GOARCH[m.arch]}
    pod_spec["securityContext"] = _pod_security()
    if m.strategy == "initFetch":
        pod_spec["initContainers"] = [_fetch_init_container(m)]
    pod_spec["containers"] = [_app_container(m, image=image)]
    pod_spec["volumes"] = volumes

    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": m.service,
            "namespace": m.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "replicas": m.replicas,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": _selector(m)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                "spec": pod_spec,
            },
        },
    }


def render_deployment(m: ManifestInput, *, k8s_version: str) -> str:
    """Render the release's apps/v1 Deployment as YAML.

    Args:
        m: the release's values.
        k8s_version: the environment's target Kubernetes version ("1.33", "v1.35.1");
            imageVolume needs 1.35 or newer.

    Raises:
        ManifestError: a value is invalid, or the strategy is unavailable for k8s_version.
    """
    return to_yaml([deployment_object(m, k8s_version=k8s_version)])


def render_hostpath_daemonset(
    environment: str,
    namespace: str,
    portal_url: str,
    entries: Sequence[DaemonSetEntry],
    fetch_image: str,
    *,
    hostpath_root: str = "/data/bin",
    sync_interval_seconds: int = 60,
    fetch_token_secret: str = FETCH_TOKEN_SECRET,
) -> str:
    """Render the ConfigMap + DaemonSet that keep an environment's binaries on every node.

    The ConfigMap holds the constant sync script and a tab-separated entry list; the
    DaemonSet runs the script in `fetch_image` (any digest-pinned image with sh, curl or
    wget, and sha256sum — an approved runtime image qualifies). Updating the ConfigMap is
    enough: the kubelet refreshes the mounted file and the next pass picks it up.

    Args:
        environment: DNS-1123 label; names the objects ``binary-sync-<environment>``.
        namespace: namespace of the DaemonSet.
        portal_url: the portal's base URL (recorded as an annotation).
        entries: (service, version, sha256, download_url, filename) per binary version
            that a live release of this environment uses.
        fetch_image: digest-pinned image the DaemonSet runs.
        hostpath_root: node directory holding ``<service>/<version>/<file>``.
        sync_interval_seconds: pause between passes.
        fetch_token_secret: name of the Secret in `namespace` whose key ``token`` holds
            a portal token with ``binaries:read`` (sent as ``Authorization: Bearer``);
            the Secret is created by the platform admin, never rendered here.

    Raises:
        ManifestError: any invalid value (every problem is listed).
    """
    errors: list[str] = []
    for field, value in (("environment", environment), ("namespace", namespace)):
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            errors.append(f"{field} must be a DNS-1123 label, got {value!r}")
    if isinstance(environment, str) and len(environment) > 63 - len("binary-sync-"):
        errors.append("environment name is too long for binary-sync-<environment>")
    _check_url(errors, "portal_url", portal_url, required=False)
    _check_pinned(errors, "fetch_image", fetch_image)
    _check_path(errors, "hostpath_root", hostpath_root)
    _check_secret_name(errors, "fetch_token_secret", fetch_token_secret)
    if (
        isinstance(sync_interval_seconds, bool)
        or not isinstance(sync_interval_seconds, int)
        or sync_interval_seconds < 1
    ):
        errors.append(
            f"sync_interval_seconds must be a positive integer, got {sync_interval_seconds!r}"
        )
    seen: set[tuple[str, str]] = set()
    lines: list[str] = []
    for index, entry in enumerate(entries):
        if not (isinstance(entry, tuple | list) and len(entry) == 5):
            errors.append(
                f"entries[{index}] must be (service, version, sha256, download_url, filename)"
            )
            continue
        service, version, sha256, url, filename = entry
        if not isinstance(service, str) or not _DNS_LABEL.match(service):
            errors.append(f"entries[{index}] service must be a DNS-1123 label, got {service!r}")
        if not isinstance(version, str) or not _VERSION.match(version):
            errors.append(f"entries[{index}] version is not a valid version, got {version!r}")
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            errors.append(f"entries[{index}] sha256 must be 64 lowercase hex digits")
        if not isinstance(filename, str) or not _FILENAME.match(filename):
            errors.append(f"entries[{index}] filename must be a plain file name, got {filename!r}")
        _check_url(
            errors,
            f"entries[{index}] download_url",
            url if isinstance(url, str) else "",
            required=True,
        )
        key = (service, version)
        if key in seen:
            errors.append(f"entries[{index}] repeats {service} {version}")
        seen.add(key)
        lines.append("\t".join((service, version, sha256, filename, url)))
    if errors:
        raise ManifestError(errors)

    name = f"binary-sync-{environment}"
    labels = {
        "app.kubernetes.io/name": "binary-sync",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": MANAGED_BY,
        LABEL_ENVIRONMENT: environment,
    }
    annotations = {ANNOTATION_PORTAL: portal_url} if portal_url else {}
    entries_text = "".join(f"{line}\n" for line in sorted(lines))
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": {
            "sync.sh": _Literal(_SYNC_SCRIPT),
            "entries.tsv": _Literal(entries_text) if entries_text else "",
        },
    }
    if annotations:
        config_map["metadata"]["annotations"] = dict(annotations)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    daemon_set = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata,
        "spec": {
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/name": "binary-sync",
                    "app.kubernetes.io/instance": name,
                }
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "automountServiceAccountToken": False,
                    # Root without capabilities: may create root-owned files in the node
                    # directory, nothing more.
                    "securityContext": _pod_security(user=0),
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {
                            "name": "sync",
                            "image": fetch_image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", f"{_SYNC_CONFIG_DIR}/sync.sh"],
                            "env": [
                                {"name": "HOSTPATH_ROOT", "value": _SYNC_HOST_DIR},
                                {
                                    "name": "ENTRIES_FILE",
                                    "value": f"{_SYNC_CONFIG_DIR}/entries.tsv",
                                },
                                {"name": "SYNC_INTERVAL", "value": str(sync_interval_seconds)},
                                _token_env(fetch_token_secret),
                            ],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                            },
                            "volumeMounts": [
                                {"name": "host-bin", "mountPath": _SYNC_HOST_DIR},
                                {
                                    "name": "config",
                                    "mountPath": _SYNC_CONFIG_DIR,
                                    "readOnly": True,
                                },
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
                            ],
                            "securityContext": _container_security(user=0),
                        }
                    ],
                    "volumes": [
                        {
                            "name": "host-bin",
                            "hostPath": {"path": hostpath_root, "type": "DirectoryOrCreate"},
                        },
                        {"name": "config", "configMap": {"name": name}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }
    return to_yaml([config_map, daemon_set])


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
        errors.append(f"binary_filename must be a plain file name, got {binary_filename!r}")
    if isinstance(user, bool) or not isinstance(user, int) or not 0 < user < 2**31:
        errors.append(f"user must be a non-root numeric uid (1 .. 2^31-1), got {user!r}")
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
