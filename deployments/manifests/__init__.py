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

Modules: `inputs` (`ManifestInput`, its constants, `ManifestError`), `checks` (the input
checks), `dumper` (YAML), `pod` (pod blocks shared by the renderers), one module per renderer
(`deployment`, `daemonset`, `dockerfile`), `scripts` (``fetch.sh``, ``sync.sh``, ``lib.sh``)
and `validation`: strict offline schema validation of rendered YAML. Import that one from
``deployments.manifests.validation``: it is not re-exported here, so rendering does not pay
for loading jsonschema and the Kubernetes schemas.
"""

from __future__ import annotations

from .checks import hostpath_root_errors, resource_errors
from .daemonset import render_hostpath_daemonset
from .deployment import deployment_object, render_deployment
from .dockerfile import render_app_dockerfile
from .dumper import to_yaml
from .inputs import (
    DEFAULT_ARGS,
    FETCH_TOKEN_ENV,
    FETCH_TOKEN_KEY,
    FETCH_TOKEN_SECRET,
    IMAGE_VOLUME_MIN_K8S,
    STRATEGIES,
    DaemonSetEntry,
    ManifestError,
    ManifestInput,
)
from .scripts import fetch_script, sync_script

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
    "deployment_object",
    "fetch_script",
    "hostpath_root_errors",
    "render_app_dockerfile",
    "render_deployment",
    "render_hostpath_daemonset",
    "resource_errors",
    "sync_script",
    "to_yaml",
]
