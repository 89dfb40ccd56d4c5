"""The ConfigMap + DaemonSet that keep an environment's hostPath binaries on every node."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from images.texts import _

from .checks import (
    _DNS_LABEL,
    _FILENAME,
    _SHA256,
    _VERSION,
    _check_hostpath_root,
    _check_pinned,
    _check_secret_name,
    _check_url,
)
from .dumper import _Literal, to_yaml
from .inputs import (
    ANNOTATION_PORTAL,
    FETCH_TOKEN_SECRET,
    LABEL_ENVIRONMENT,
    MANAGED_BY,
    DaemonSetEntry,
    ManifestError,
)
from .pod import _container_security, _pod_security, _token_env
from .scripts import sync_script

# The DaemonSet sees its ConfigMap and the node directory at these paths.
_SYNC_CONFIG_DIR = "/etc/binary-sync"
_SYNC_HOST_DIR = "/host-bin"


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
            errors.append(
                _(
                    "%(field)s must be a DNS-1123 label, got %(value)s",
                    field=field,
                    value=repr(value),
                )
            )
    if isinstance(environment, str) and len(environment) > 63 - len("binary-sync-"):
        errors.append(_("environment name is too long for binary-sync-<environment>"))
    _check_url(errors, "portal_url", portal_url, required=False)
    _check_pinned(errors, "fetch_image", fetch_image)
    _check_hostpath_root(errors, "hostpath_root", hostpath_root)
    _check_secret_name(errors, "fetch_token_secret", fetch_token_secret)
    if (
        isinstance(sync_interval_seconds, bool)
        or not isinstance(sync_interval_seconds, int)
        or sync_interval_seconds < 1
    ):
        errors.append(
            _(
                "sync_interval_seconds must be a positive integer, got %(value)s",
                value=repr(sync_interval_seconds),
            )
        )
    seen: set[tuple[str, str]] = set()
    lines: list[str] = []
    for index, entry in enumerate(entries):
        if not (isinstance(entry, tuple | list) and len(entry) == 5):
            errors.append(
                _(
                    "entries[%(index)s] must be (service, version, sha256, download_url, filename)",
                    index=index,
                )
            )
            continue
        service, version, sha256, url, filename = entry
        if not isinstance(service, str) or not _DNS_LABEL.match(service):
            errors.append(
                _(
                    "entries[%(index)s] service must be a DNS-1123 label, got %(value)s",
                    index=index,
                    value=repr(service),
                )
            )
        if not isinstance(version, str) or not _VERSION.match(version):
            errors.append(
                _(
                    "entries[%(index)s] version is not a valid version, got %(value)s",
                    index=index,
                    value=repr(version),
                )
            )
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            errors.append(
                _("entries[%(index)s] sha256 must be 64 lowercase hex digits", index=index)
            )
        if not isinstance(filename, str) or not _FILENAME.match(filename):
            errors.append(
                _(
                    "entries[%(index)s] filename must be a plain file name, got %(value)s",
                    index=index,
                    value=repr(filename),
                )
            )
        _check_url(
            errors,
            f"entries[{index}] download_url",
            url if isinstance(url, str) else "",
            required=True,
        )
        key = (service, version)
        if key in seen:
            errors.append(
                _(
                    "entries[%(index)s] repeats %(service)s %(version)s",
                    index=index,
                    service=service,
                    version=version,
                )
            )
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
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": {
            "sync.sh": _Literal(sync_script()),
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
