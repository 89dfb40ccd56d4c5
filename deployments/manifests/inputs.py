"""What a release's manifests are rendered from: the input dataclass, its constants, errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STRATEGIES = ("hostPath", "initFetch", "imageVolume", "image")
DEFAULT_ARGS = ("-m", "release")
IMAGE_VOLUME_MIN_K8S = (1, 35)
RUN_AS_USER = 65532
MANAGED_BY = "base-image-portal"
ANNOTATION_RELEASE = "baseimage.portal/release"
ANNOTATION_PORTAL = "baseimage.portal/url"
LABEL_ENVIRONMENT = "baseimage.portal/environment"

# The download endpoint needs a token with binaries:read: the DaemonSet and the init container
# read it from this Secret (created by the platform admin, never rendered with a value).
FETCH_TOKEN_SECRET = "portal-fetch-token"  # noqa: S105 - a Secret's name, not a secret
FETCH_TOKEN_KEY = "token"  # noqa: S105 - the Secret's key name
FETCH_TOKEN_ENV = "PORTAL_TOKEN"  # noqa: S105 - an environment variable's name


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
