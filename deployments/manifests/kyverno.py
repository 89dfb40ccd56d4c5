"""The admission policy: a Kyverno `kyverno.io/v1` ClusterPolicy generated from the catalog (pure).

What it enforces, in the environments' namespaces:

* every container, init container and ephemeral container image is an approved or superseded
  (never a revoked or candidate) image version or a portal-built app image, and every
  `volumes[].image.reference` is a portal-built binary artifact or such an image version, all
  pinned by digest. A binary artifact is a FROM-scratch image holding only the binary: it is
  mounted, never run as a container (that would bypass the runtime base image), and keeping
  the two lists apart halves the policy's size;
* `hostPath` volumes only at or under the roots of the namespace's hostPath environments
  (none at all in a namespace without one), with no `..` segment.

Kyverno's `AnyNotIn` operator matches wildcards in *both* directions (the admitted value is
read as a pattern too), so a value with `*` or `?` is denied outright: `image: "*"` or
`path: /*` would otherwise match any allowed entry.

Plain values in, YAML text out; no ORM, no I/O: golden-file testable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from images.texts import _

from .dumper import to_yaml_large

POLICY_NAME = "base-image-portal"
FAILURE_ACTIONS = ("Enforce", "Audit")
_PINNED = re.compile(r"^[a-z0-9][a-z0-9.:-]*(?:/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}\Z")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_RULE_NAME_MAX = 63


class PolicyInputError(ValueError):
    """A value the policy cannot be rendered from (names the value)."""


@dataclass(frozen=True)
class KyvernoPolicyInput:
    """What the policy is generated from, in any order (the renderer sorts and deduplicates).

    `images` (image versions, app images) and `artifacts` (binary artifacts) are
    digest-pinned references (`host/repo@sha256:…`); `hostpath_roots` maps each environment
    namespace to the hostPath roots allowed there (empty: no hostPath at all).
    """

    images: Iterable[str]
    artifacts: Iterable[str] = ()
    hostpath_roots: dict[str, Iterable[str]] = field(default_factory=dict)
    failure_action: str = "Enforce"
    portal_url: str = ""


def _check(inp: KyvernoPolicyInput) -> tuple[list[str], list[str], dict[str, list[str]]]:
    if inp.failure_action not in FAILURE_ACTIONS:
        raise PolicyInputError(
            _(
                "failure_action must be one of %(actions)s, not %(failure_action)s.",
                actions=", ".join(FAILURE_ACTIONS),
                failure_action=repr(inp.failure_action),
            )
        )
    images = sorted(set(inp.images))
    artifacts = sorted(set(inp.artifacts) | set(images))
    for ref in artifacts:
        if not _PINNED.match(ref):
            raise PolicyInputError(
                _("image %(ref)s is not a digest-pinned reference.", ref=repr(ref))
            )
    roots: dict[str, list[str]] = {}
    for namespace, paths in sorted(inp.hostpath_roots.items()):
        if not _NAMESPACE.match(namespace):
            raise PolicyInputError(
                _("namespace %(namespace)s is not a DNS-1123 label.", namespace=repr(namespace))
            )
        clean = sorted(set(paths))
        for root in clean:
            if (
                not root.startswith("/")
                or root == "/"
                or root.endswith("/")
                or any(part in ("", ".", "..") for part in root[1:].split("/"))
                or any(ch in root for ch in "*?[]\n")
            ):
                raise PolicyInputError(
                    _("hostPath root %(root)s is not a normalised absolute path.", root=repr(root))
                )
        roots[namespace] = clean
    return images, artifacts, roots


def _wildcard_guard(key: str) -> dict[str, Any]:
    """A deny condition: the admitted value carries a wildcard character."""
    return {
        "key": f"{{{{ contains({key}, '*') || contains({key}, '?') }}}}",
        "operator": "Equals",
        "value": True,
    }


def _images_rule(
    namespaces: list[str], images: list[str], artifacts: list[str], action: str
) -> dict[str, Any]:
    message = (
        "{{ element.name }}: image {{ element.image }} is not an approved base image version or "
        "a portal-built app image pinned by digest. Use the pinned reference the portal shows "
        "(GET /api/v1/base-images/resolve/?ref=…) or a release manifest from the portal."
    )
    volume_message = (
        "volume {{ element.name }}: image {{ element.image.reference }} is not a portal-built "
        "binary artifact or an approved image version pinned by digest."
    )
    containers = "request.object.spec.[ephemeralContainers, initContainers, containers][]"
    return {
        "name": "approved-images",
        "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": namespaces}}]},
        "preconditions": {
            "all": [
                {
                    "key": "{{ request.operation || 'BACKGROUND' }}",
                    "operator": "NotEquals",
                    "value": "DELETE",
                }
            ]
        },
        "validate": {
            "failureAction": action,
            "message": "Images must be approved by the Base Image Portal.",
            "foreach": [
                {
                    "list": containers,
                    "deny": {
                        "conditions": {
                            "any": [
                                {
                                    "key": "{{ element.image }}",
                                    "operator": "AnyNotIn",
                                    "value": images,
                                    "message": message,
                                },
                                _wildcard_guard("element.image"),
                            ]
                        }
                    },
                },
                {
                    "list": "request.object.spec.volumes[?image][]",
                    "deny": {
                        "conditions": {
                            "any": [
                                {
                                    "key": "{{ element.image.reference }}",
                                    "operator": "AnyNotIn",
                                    "value": artifacts,
                                    "message": volume_message,
                                },
                                _wildcard_guard("element.image.reference"),
                            ]
                        }
                    },
                },
            ],
        },
    }


def _rule_name(namespace: str) -> str:
    name = f"hostpath-{namespace}"
    if len(name) <= _RULE_NAME_MAX:
        return name
    digest = hashlib.sha256(namespace.encode()).hexdigest()[:8]
    return f"{name[: _RULE_NAME_MAX - 9]}-{digest}"


def _hostpath_rule(namespace: str, roots: list[str], action: str) -> dict[str, Any]:
    allowed = [pattern for root in roots for pattern in (root, f"{root}/*")]
    message = (
        f"hostPath volumes in namespace {namespace} must lie under: {', '.join(roots)}."
        if roots
        else f"hostPath volumes are not allowed in namespace {namespace}: no hostPath "
        "environment of the portal uses it."
    )
    return {
        "name": _rule_name(namespace),
        "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": [namespace]}}]},
        "preconditions": {
            "all": [
                {
                    "key": "{{ request.operation || 'BACKGROUND' }}",
                    "operator": "NotEquals",
                    "value": "DELETE",
                }
            ]
        },
        "validate": {
            "failureAction": action,
            "message": message,
            "foreach": [
                {
                    "list": "request.object.spec.volumes[?hostPath][]",
                    "deny": {
                        "conditions": {
                            "any": [
                                {
                                    "key": "{{ element.hostPath.path }}",
                                    "operator": "AnyNotIn",
                                    "value": allowed,
                                },
                                {
                                    "key": "{{ contains(element.hostPath.path, '..') }}",
                                    "operator": "Equals",
                                    "value": True,
                                },
                                _wildcard_guard("element.hostPath.path"),
                            ]
                        }
                    },
                }
            ],
        },
    }


def kyverno_policy_object(inp: KyvernoPolicyInput) -> dict[str, Any]:
    """The ClusterPolicy as a dict (see the module docstring for what it enforces).

    Without environments the policy has no rules: the portal governs no namespace yet.

    Raises:
        PolicyInputError: an image that is not digest-pinned, a bad namespace or root, or an
            unknown failure action.
    """
    images, artifacts, roots = _check(inp)
    namespaces = sorted(roots)
    rules: list[dict[str, Any]] = []
    if namespaces:
        # An empty allow-list still denies: AnyNotIn of an empty list is true.
        rules.append(_images_rule(namespaces, images, artifacts, inp.failure_action))
        rules.extend(_hostpath_rule(ns, roots[ns], inp.failure_action) for ns in namespaces)
    fingerprint = hashlib.sha256(
        "\n".join(
            [*images, "", *artifacts, "", *(f"{ns}={','.join(roots[ns])}" for ns in namespaces)]
        ).encode()
    ).hexdigest()
    annotations = {
        "policies.kyverno.io/title": "Base Image Portal: approved images and hostPath roots",
        "policies.kyverno.io/category": "Supply chain",
        "policies.kyverno.io/subject": "Pod",
        "policies.kyverno.io/description": (
            "Generated by the Base Image Portal from its catalog: containers, init and ephemeral "
            "containers and image volumes run only approved base image versions or portal-built "
            "artifacts pinned by digest; hostPath volumes only under the environments' roots."
        ),
        "portal.baseimage.io/fingerprint": f"sha256:{fingerprint}",
        "portal.baseimage.io/images": str(len(images)),
        "portal.baseimage.io/artifacts": str(len(artifacts) - len(images)),
    }
    if inp.portal_url:
        annotations["portal.baseimage.io/source"] = f"{inp.portal_url}/api/v1/policies/kyverno.yaml"
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": POLICY_NAME,
            "labels": {"app.kubernetes.io/managed-by": "base-image-portal"},
            "annotations": annotations,
        },
        "spec": {"background": True, "rules": rules},
    }


def render_kyverno_policy(inp: KyvernoPolicyInput) -> str:
    """The ClusterPolicy as YAML (one document)."""
    return to_yaml_large([kyverno_policy_object(inp)])
