"""The admission policy: a Kyverno `kyverno.io/v1` ClusterPolicy generated from the catalog (pure).

What it enforces, in the environments' namespaces:

* every container, init container and ephemeral container image is an approved or superseded
  (never a revoked or candidate) image version or a portal-built app image, and every
  `volumes[].image.reference` is a portal-built binary artifact or such an image version, all
  pinned by digest. A binary artifact is a FROM-scratch image holding only the binary: it is
  mounted, never run as a container (that would bypass the runtime base image), and keeping
  the two lists apart halves the export's size;
* `hostPath` volumes only at or under the roots of the namespace's hostPath environments
  (none at all in a namespace without one), with no `..` segment.

The admitted references do not live in the policy: Kubernetes refuses objects past about
1.5 MiB (etcd's request limit) and a ConfigMap's data past 1 MiB, and a company's catalog
passes that at about 12,000 references. They go into ConfigMaps (`<policy>-images-<i>-of-<n>`,
`<policy>-artifacts-<i>-of-<n>`, one JSON array of strings under `refs` each, the form Kyverno's
`parse_json` reads), sharded by the digest's first 32 bits over the smallest power of two of
shards whose largest holds at most `SHARD_DATA_MAX` bytes. The policy's rule loads every
shard as a `configMap` context entry and denies a reference that is in none of them. So every
object of the export stays under `OBJECT_BYTES_MAX`: a shard by construction, the policy
because it grows only by a few lines per shard and about 800 bytes per environment namespace (its
hostPath rule). Sharding by digest keeps a publish's change to one ConfigMap per list.

Kyverno's `AnyNotIn` operator matches wildcards in *both* directions (the admitted value is
read as a pattern too), so a value with `*` or `?` is denied outright: `image: "*"` or
`path: /*` would otherwise match any allowed entry.

Plain values in, YAML text out (ConfigMaps first, then the ClusterPolicy, so `kubectl apply`
creates the shards before the policy reads them); no ORM, no I/O: golden-file testable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from images.texts import _

from .dumper import _Literal, to_yaml_large

POLICY_NAME = "base-image-portal"
FAILURE_ACTIONS = ("Enforce", "Audit")
_PINNED = re.compile(r"^[a-z0-9][a-z0-9.:-]*(?:/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}\Z")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_RULE_NAME_MAX = 63
# Kubernetes' limits: etcd takes requests up to 1.5 MiB; a ConfigMap's data at most 1 MiB.
OBJECT_BYTES_MAX = 1024 * 1024
# One shard's JSON array, leaving room under OBJECT_BYTES_MAX for its metadata and YAML quoting.
SHARD_DATA_MAX = 768 * 1024
_SHARDS_MAX = 1024
CONFIGMAP_NAMESPACE = "kyverno"
_MANAGED = {"app.kubernetes.io/managed-by": "base-image-portal"}


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
    configmap_namespace: str = CONFIGMAP_NAMESPACE


def _check(inp: KyvernoPolicyInput) -> tuple[list[str], list[str], dict[str, list[str]]]:
    if inp.failure_action not in FAILURE_ACTIONS:
        raise PolicyInputError(
            _(
                "failure_action must be one of %(actions)s, not %(failure_action)s.",
                actions=", ".join(FAILURE_ACTIONS),
                failure_action=repr(inp.failure_action),
            )
        )
    if not _NAMESPACE.match(inp.configmap_namespace):
        raise PolicyInputError(
            _(
                "namespace %(namespace)s is not a DNS-1123 label.",
                namespace=repr(inp.configmap_namespace),
            )
        )
    images = sorted(set(inp.images))
    artifacts = sorted(set(inp.artifacts) - set(images))
    for ref in (*images, *artifacts):
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


@dataclass(frozen=True)
class _Shard:
    """One ConfigMap of admitted references: its name, its context entry's name, its refs."""

    name: str
    variable: str
    refs: list[str]


def _shards(kind: str, refs: list[str]) -> list[_Shard]:
    """`refs` over the smallest power of two of shards whose largest JSON array fits
    SHARD_DATA_MAX (always one shard at least, so the policy never names a missing one)."""
    # One reference a line (`json.dumps(indent=0)`, readable in a diff): each costs its length
    # plus four bytes (two quotes, a comma, a newline); the brackets two more.
    costs = [len(ref) + 4 for ref in refs]
    keys = [int(ref.rsplit("@sha256:", 1)[1][:8], 16) for ref in refs]
    count = 1
    while True:
        sizes = [2] * count
        for key, cost in zip(keys, costs, strict=True):
            sizes[key % count] += cost
        if max(sizes) <= SHARD_DATA_MAX:
            break
        count *= 2
        if count > _SHARDS_MAX:
            raise PolicyInputError(
                _(
                    "%(count)s %(kind)s references need more than %(most)s ConfigMaps.",
                    count=len(refs),
                    kind=kind,
                    most=_SHARDS_MAX,
                )
            )
    buckets: list[list[str]] = [[] for _shard in range(count)]
    for key, ref in zip(keys, refs, strict=True):
        buckets[key % count].append(ref)
    return [
        # The count in the name: a change of count writes new ConfigMaps and leaves the ones
        # the applied policy reads untouched until the new policy replaces it.
        _Shard(f"{POLICY_NAME}-{kind}-{i}-of-{count}", f"{kind}_{i}", bucket)
        for i, bucket in enumerate(buckets)
    ]


def _shard_configmap(shard: _Shard, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": shard.name,
            "namespace": namespace,
            # Kyverno caches ConfigMaps carrying this label instead of asking the API server.
            "labels": {**_MANAGED, "cache.kyverno.io/enabled": "true"},
            "annotations": {
                "portal.baseimage.io/policy": POLICY_NAME,
                "portal.baseimage.io/references": str(len(shard.refs)),
            },
        },
        "data": {"refs": _Literal(json.dumps(shard.refs, indent=0))},
    }


def _context(shards: list[_Shard], namespace: str) -> list[dict[str, Any]]:
    return [
        {"name": shard.variable, "configMap": {"name": shard.name, "namespace": namespace}}
        for shard in shards
    ]


def _not_in_any(key: str, shards: list[_Shard], message: str) -> dict[str, Any]:
    """Deny when `key` is in none of the shards (each shard's JSON array read by parse_json)."""
    conditions: list[dict[str, Any]] = [
        {
            "key": key,
            "operator": "AnyNotIn",
            "value": f"{{{{ {shard.variable}.data.refs | parse_json(@) }}}}",
        }
        for shard in shards
    ]
    conditions[0]["message"] = message
    return {"conditions": {"all": conditions}}


def _images_rule(
    namespaces: list[str],
    images: list[_Shard],
    artifacts: list[_Shard],
    action: str,
    configmap_namespace: str,
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
    volumes = "request.object.spec.volumes[?image][]"
    # Two entries per list: a deny's `any` and `all` must both hold, and the wildcard guard
    # must deny on its own.
    return {
        "name": "approved-images",
        "match": {"any": [{"resources": {"kinds": ["Pod"], "namespaces": namespaces}}]},
        "context": _context([*images, *artifacts], configmap_namespace),
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
                {"list": containers, "deny": _not_in_any("{{ element.image }}", images, message)},
                {
                    "list": containers,
                    "deny": {"conditions": {"any": [_wildcard_guard("element.image")]}},
                },
                {
                    "list": volumes,
                    "deny": _not_in_any(
                        "{{ element.image.reference }}", [*images, *artifacts], volume_message
                    ),
                },
                {
                    "list": volumes,
                    "deny": {"conditions": {"any": [_wildcard_guard("element.image.reference")]}},
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


def kyverno_policy_objects(inp: KyvernoPolicyInput) -> list[dict[str, Any]]:
    """The export as objects: the reference shards (ConfigMaps), then the ClusterPolicy (see
    the module docstring for what it enforces).

    Without environments the policy has no rules: the portal governs no namespace yet.

    Raises:
        PolicyInputError: an image that is not digest-pinned, a bad namespace or root, an
            unknown failure action, a catalog too large for the shards, or so many
            environment namespaces that the policy itself passes OBJECT_BYTES_MAX.
    """
    images, artifacts, roots = _check(inp)
    image_shards = _shards("images", images)
    artifact_shards = _shards("artifacts", artifacts)
    namespaces = sorted(roots)
    rules: list[dict[str, Any]] = []
    if namespaces:
        # An empty allow-list still denies: AnyNotIn of an empty list is true.
        rules.append(
            _images_rule(
                namespaces,
                image_shards,
                artifact_shards,
                inp.failure_action,
                inp.configmap_namespace,
            )
        )
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
            "artifacts pinned by digest; hostPath volumes only under the environments' roots. "
            "The admitted references are in the ConfigMaps the rule's context names."
        ),
        "portal.baseimage.io/fingerprint": f"sha256:{fingerprint}",
        "portal.baseimage.io/images": str(len(images)),
        "portal.baseimage.io/artifacts": str(len(artifacts)),
    }
    if inp.portal_url:
        annotations["portal.baseimage.io/source"] = f"{inp.portal_url}/api/v1/policies/kyverno.yaml"
    policy = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": POLICY_NAME, "labels": dict(_MANAGED), "annotations": annotations},
        "spec": {"background": True, "rules": rules},
    }
    size = len(json.dumps(policy, separators=(",", ":")).encode())
    if size > OBJECT_BYTES_MAX:  # refused here with a reason, not by the API server
        raise PolicyInputError(
            _(
                "the ClusterPolicy would be %(size)s bytes, over Kubernetes' %(most)s: "
                "%(namespaces)s environment namespaces each add a hostPath rule.",
                size=size,
                most=OBJECT_BYTES_MAX,
                namespaces=len(namespaces),
            )
        )
    configmaps = [
        _shard_configmap(shard, inp.configmap_namespace)
        for shards in (image_shards, artifact_shards)
        for shard in shards
    ]
    return [*configmaps, policy]


def kyverno_policy_object(inp: KyvernoPolicyInput) -> dict[str, Any]:
    """The ClusterPolicy alone (the last object of `kyverno_policy_objects`)."""
    return kyverno_policy_objects(inp)[-1]


def render_kyverno_policy(inp: KyvernoPolicyInput) -> str:
    """The export as YAML: one document per ConfigMap shard, then the ClusterPolicy."""
    return to_yaml_large(kyverno_policy_objects(inp))
