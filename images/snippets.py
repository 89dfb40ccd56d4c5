"""Usage snippets shown on a catalog entry: pure renderers (plain values in, text out)."""

from __future__ import annotations

import yaml


def render_from_line(pull_ref: str, *, stage: str = "") -> str:
    """A digest-pinned `FROM` line."""
    return f"FROM {pull_ref}" + (f" AS {stage}" if stage else "")


def render_volume_pod(
    *,
    pull_ref: str,
    name: str = "my-service",
    binary: str = "application",
    host_path: str = "/data/bin",
    mount_path: str = "/test-data",
) -> str:
    """The standard's volume-mode Pod: the binary mounted from the node into the base image."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": name,
                    "image": pull_ref,
                    "command": [f"{mount_path}/bin/{binary}", "-m", "release"],
                    "volumeMounts": [
                        {"mountPath": mount_path, "name": "bin-volume", "readOnly": True}
                    ],
                }
            ],
            "volumes": [
                {"name": "bin-volume", "hostPath": {"path": host_path, "type": "Directory"}}
            ],
        },
    }
    return yaml.safe_dump(pod, sort_keys=False, default_flow_style=False)
