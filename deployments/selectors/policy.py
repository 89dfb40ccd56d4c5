"""Reads of the admission policy export: what the Kyverno policy and its ConfigMaps come from.

It spans the catalog (image versions) and the deployments app (environments, binary
artifacts, portal-built app images), so it lives in the higher layer.
"""

from __future__ import annotations

from django.conf import settings

from images.choices import VersionState
from images.models import ImageVersion
from images.references import registry_host
from portal.choices import JobState
from portal.models import Job

from ..choices import BinaryState, DeliveryStrategy
from ..manifests.kyverno import CONFIGMAP_NAMESPACE, KyvernoPolicyInput
from ..models import BinaryVersion, Environment
from ..services.app_images import APP_IMAGE_JOB_KIND

# Approved once and not revoked: superseded versions keep running until their plans move them.
ADMITTED_VERSION_STATES = (VersionState.APPROVED, VersionState.SUPERSEDED)
# A yanked binary may still be live in a release (pods restart); a purged one never is.
ADMITTED_BINARY_STATES = (BinaryState.ACTIVE, BinaryState.YANKED)


def kyverno_policy_input(
    *, failure_action: str = "Enforce", configmap_namespace: str = CONFIGMAP_NAMESPACE
) -> KyvernoPolicyInput:
    """The catalog's admitted references and the environments' namespaces and hostPath roots.

    Four queries, whatever the size of the catalog: versions (with registry and image name),
    binary artifacts, succeeded app-image builds, environments.
    """
    images: set[str] = set()
    for host, name, digest in ImageVersion.objects.filter(
        state__in=ADMITTED_VERSION_STATES
    ).values_list("registry__url", "base_image__name", "digest"):
        images.add(f"{registry_host(host)}/{name}@{digest}")
    artifacts = set(
        BinaryVersion.objects.filter(state__in=ADMITTED_BINARY_STATES)
        .exclude(artifact_ref="")
        .values_list("artifact_ref", flat=True)
    )
    for ref in Job.objects.filter(kind=APP_IMAGE_JOB_KIND, state=JobState.SUCCEEDED).values_list(
        "result__app_image", flat=True
    ):
        if isinstance(ref, str) and ref:
            images.add(ref)
    roots: dict[str, set[str]] = {}
    for namespace, strategy, root in Environment.objects.values_list(
        "namespace", "delivery_strategy", "hostpath_root"
    ):
        allowed = roots.setdefault(namespace, set())
        if strategy == DeliveryStrategy.HOSTPATH:
            allowed.add(root)
    return KyvernoPolicyInput(
        images=images,
        artifacts=artifacts,
        hostpath_roots={ns: sorted(paths) for ns, paths in roots.items()},
        failure_action=failure_action,
        portal_url=settings.PORTAL_URL,
        configmap_namespace=configmap_namespace,
    )
