"""What an image-mode deployment's app image is built on, read from the registry.

An app image the portal builds records its base itself (`plan_item_app_image_built`). One a
team's CI builds names its base in the OCI annotation (or label)
`org.opencontainers.image.base.digest`: a job reads it from the registry when the deployment
gets the image, so a rebase finds the deployment by the digest it really runs on even when
its declared runtime version says otherwise.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import transaction

from images.models import Registry
from images.registry import RegistryError
from images.texts import _
from portal.actors import Actor
from portal.jobs import JobFailure, job_create
from portal.models import Job

from ..models import Deployment

APP_IMAGE_BASE_JOB_KIND = "deployments.app_image_base"


def app_image_base_read_queue(*, deployment: Deployment, actor: Actor) -> Job | None:
    """Queue the job reading the base digest of `deployment`'s app image (none without one)."""
    if not deployment.app_image:
        return None
    job, _ = job_create(
        kind=APP_IMAGE_BASE_JOB_KIND,
        actor=actor,
        params={"deployment_id": deployment.pk, "app_image": deployment.app_image},
        target=deployment,
        team=deployment.service.team,
        idempotency_key=f"{APP_IMAGE_BASE_JOB_KIND}:{deployment.pk}:{deployment.app_image}",
    )
    return job


def _registry_for(host: str) -> Registry:
    for registry in Registry.objects.all():
        if urlsplit(registry.url).netloc == host:
            return registry
    raise JobFailure(
        _(
            "No registry of the catalog serves %(host)s; add it under Registries to read the "
            "app image's base.",
            host=host,
        )
    )


def app_image_base_read(*, deployment_id: int, app_image: str) -> str:
    """Read the base digest of `app_image` from its registry and record it on the deployment
    (unless the deployment has moved to another image meanwhile); return it ("" when the
    image names no base).

    Raises:
        JobFailure: no catalog registry serves the image's host, or the registry refused.
    """
    host, _sep, rest = app_image.partition("/")
    repository, _sep, digest = rest.partition("@")
    registry = _registry_for(host)
    try:
        with registry.client() as client:
            base = client.base_digest(repository, digest)
    except RegistryError as exc:
        raise JobFailure(
            _("Reading the base of %(image)s: %(error)s", image=app_image, error=str(exc))
        ) from exc
    with transaction.atomic():
        Deployment.objects.filter(pk=deployment_id, app_image=app_image).update(
            app_image_base_digest=base
        )
    return base
