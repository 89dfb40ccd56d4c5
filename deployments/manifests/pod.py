"""Pod building blocks shared by the Deployment and the hostPath sync DaemonSet."""

from __future__ import annotations

from typing import Any

from .inputs import FETCH_TOKEN_ENV, FETCH_TOKEN_KEY, RUN_AS_USER


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


def _token_env(secret_name: str) -> dict[str, Any]:
    """PORTAL_TOKEN from the fetch-token Secret (the pod does not start until it exists)."""
    return {
        "name": FETCH_TOKEN_ENV,
        "valueFrom": {"secretKeyRef": {"name": secret_name, "key": FETCH_TOKEN_KEY}},
    }
