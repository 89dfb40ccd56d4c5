"""The release's apps/v1 Deployment, in every strategy (hostPath, initFetch, imageVolume, image)."""

from __future__ import annotations

import json
import re
from typing import Any

from images.texts import _

from .checks import _check_input, _k8s_minor
from .dumper import _Literal, to_yaml
from .inputs import (
    _ARCH_TO_GOARCH,
    ANNOTATION_PORTAL,
    ANNOTATION_RELEASE,
    IMAGE_VOLUME_MIN_K8S,
    LABEL_ENVIRONMENT,
    MANAGED_BY,
    ManifestError,
    ManifestInput,
)
from .pod import _container_security, _pod_security, _token_env
from .scripts import fetch_script

# The init container sees the shared emptyDir here.
_FETCH_DIR = "/fetched"


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
    # S108: /tmp here is the pod's own emptyDir, not a shared temporary directory.
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    if m.strategy != "image":
        mounts.insert(0, {"name": "binary", "mountPath": m.mount_path, "readOnly": True})
    container["volumeMounts"] = mounts
    container["securityContext"] = _container_security()
    return container


def _fetch_init_container(m: ManifestInput) -> dict[str, Any]:
    return {
        "name": "fetch-binary",
        "image": m.runtime_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", _Literal(fetch_script())],
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


def deployment_object(m: ManifestInput, *, k8s_version: str) -> dict[str, Any]:
    """The Deployment as a dict (what `render_deployment` serialises)."""
    errors = _check_input(m)
    minor = _k8s_minor(k8s_version) if isinstance(k8s_version, str) else None
    if minor is None:
        errors.append(
            _(
                "k8s_version must look like 1.33 or v1.33.2, got %(value)s",
                value=repr(k8s_version),
            )
        )
    elif m.strategy == "imageVolume" and minor < IMAGE_VOLUME_MIN_K8S:
        errors.append(
            _(
                "strategy imageVolume is not available: image volumes need Kubernetes "
                "%(minimum)s or newer; environment %(environment)s targets %(version)s. Use "
                "hostPath or initFetch there.",
                minimum=f"{IMAGE_VOLUME_MIN_K8S[0]}.{IMAGE_VOLUME_MIN_K8S[1]}",
                environment=m.environment,
                version=f"{minor[0]}.{minor[1]}",
            )
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
