"""Job kinds of the images app."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from images.texts import _
from portal.actors import Actor
from portal.jobs import JobContext, JobFailure, job_kind

from .advisories import jobs as advisory_jobs  # noqa: F401 - registers its kinds
from .buildjobs import build_image, is_candidate_tag
from .models import BaseImage
from .registry import RegistryClient, RegistryError, RegistryUnavailable
from .scanning import jobs as scanning_jobs  # noqa: F401 - registers its kinds
from .services import image_request_build_failed, image_version_record
from .services.scans import image_version_scan_start


@job_kind("images.registry_sync", timeout_seconds=1800, max_attempts=3, title="Registry sync")
def registry_sync(ctx: JobContext) -> dict[str, Any]:
    """List every catalog image's tags in its registry and record each tag's manifest facts.

    Params: `image_ids` (optional list) limits the sync to those catalog entries.
    """
    query = BaseImage.objects.select_related("registry").exclude(registry=None).order_by("name")
    if ctx.params.get("image_ids"):
        query = query.filter(pk__in=ctx.params["image_ids"])
    images = list(query)
    actor = Actor.system_actor(f"job:{ctx.job.pk}")
    found = created = 0
    missing: list[str] = []
    clients: dict[int, RegistryClient] = {}
    for index, image in enumerate(images):
        ctx.check_cancelled()
        ctx.progress(int(100 * index / max(1, len(images))), f"{image.name}: listing tags")
        registry = image.registry
        if registry is None:  # excluded by the query; the type cannot know
            continue
        if registry.pk not in clients:
            clients[registry.pk] = registry.client()
        client = clients[registry.pk]
        try:
            tags = client.list_tags(image.name)
        except RegistryUnavailable as exc:
            raise JobFailure(
                _("%(registry)s is unavailable: %(error)s", registry=registry.name, error=str(exc)),
                retry=True,
            ) from exc
        except RegistryError as exc:
            ctx.log(f"{image.name}: no repository in {registry.name} ({exc})")
            missing.append(image.name)
            continue
        for tag in tags:
            ctx.check_cancelled()
            if is_candidate_tag(tag):  # a build's staging tag: its version is already recorded
                continue
            try:
                info = client.manifest_info(image.name, tag)
            except RegistryUnavailable as exc:
                raise JobFailure(
                    _(
                        "%(registry)s is unavailable: %(error)s",
                        registry=registry.name,
                        error=str(exc),
                    ),
                    retry=True,
                ) from exc
            except RegistryError as exc:
                ctx.log(f"{image.name}:{tag}: skipped ({exc})")
                continue
            version, is_new = image_version_record(
                actor=actor,
                image=image,
                registry=registry,
                tag=tag,
                digest=info.digest,
                size=info.size,
                arch=info.architecture,
            )
            found += 1
            created += int(is_new)
            if is_new:  # a version found in the registry is scanned like a built one
                scan_job = image_version_scan_start(version_id=version.pk, actor=actor)
                ctx.log(f"{image.name}:{tag}: scan job #{scan_job.pk} queued")
            ctx.log(
                f"{image.name}:{tag} {info.digest} {info.architecture} {info.size} bytes"
                f"{' (new)' if is_new else ''}"
            )
    return {"images": len(images), "tags": found, "new_versions": created, "missing": missing}


@job_kind(
    "images.build",
    queue="builds",
    timeout_seconds=settings.PORTAL_BUILD_TIMEOUT_SECONDS + 600,
    max_attempts=2,
    title="Image build",
    on_failure=image_request_build_failed,
)
def image_build(ctx: JobContext) -> dict[str, Any]:
    """Build a request's (or the portal's own) recipe, push it and record the candidate.

    See `images.buildjobs` for the steps; a worker lost mid-build is retried once.
    """
    return build_image(ctx)
