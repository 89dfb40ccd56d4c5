"""The build job's run: build (bootstrap + commit, or buildah bud), push, read back, record."""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from images.texts import _
from portal.actors import Actor
from portal.jobs import JobCancelled, JobContext, JobFailure

from ..builder import (
    BootstrapSpec,
    BuildCancelled,
    BuilderConfig,
    BuildError,
    BuildTimeout,
    bootstrap_command,
    bootstrap_rootfs,
    build_dockerfile,
    image_from_rootfs,
    oci_labels,
    remove_image,
)
from ..choices import ImageStatus, VersionState
from ..models import BaseImage, ImageRequest, ImageVersion, Registry
from ..registry import RegistryError
from ..selectors import image_version_with_tag
from ..services import (
    GateBlocked,
    base_image_create,
    image_request_mark_building,
    image_request_mark_built,
    image_request_mark_failed,
    image_version_publish,
    image_version_record,
)
from ..services.scans import image_version_scan_start
from .common import JobLog, builder_config, push_and_read_back, retry_registry
from .recipe import BuildTarget, build_target, existing_version, registry_for, resolve_recipe

_CANDIDATE_TAG = re.compile(r"-candidate-[0-9]+\Z")


def _rootfs(
    spec: BootstrapSpec, config: BuilderConfig, workdir: str, log: JobLog, ctx: JobContext
) -> str:
    """Bootstrap the root filesystem (reusing PORTAL_BOOTSTRAP_CACHE_DIR when set)."""
    cache_dir = settings.PORTAL_BOOTSTRAP_CACHE_DIR
    if cache_dir:
        argv = bootstrap_command(spec, "OUT", config=config)
        key = hashlib.sha256("\0".join(argv).encode()).hexdigest()[:16]
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        target = Path(cache_dir) / f"{spec.suite}-{spec.variant}-{key}.tar"
        if target.exists():
            log.portal(f"reusing the cached root filesystem {target.name}")
            return str(target)
    else:
        target = Path(workdir) / "rootfs.tar"
    bootstrap_rootfs(spec, str(target), config=config, log=log, should_cancel=ctx.should_cancel)
    return str(target)


def _build(ctx: JobContext, target: BuildTarget, actor: Actor) -> dict[str, Any]:
    log = JobLog(ctx)
    log.progress(2, f"resolving the {target.recipe_kind} recipe of {target.name}:{target.tag}")
    if not target.tag:
        raise JobFailure(_("No tag to build."))
    registry = registry_for(target)
    recipe = resolve_recipe(target)
    for base in recipe.bases:
        log.portal(f"base pinned: {base}")
    existing = existing_version(target, recipe)
    if existing is not None:
        log.portal(
            f"reusing existing version {existing.digest} ({existing.state}): the same recipe "
            f"(sha256 {recipe.sha256[:12]}) on the same base digest was built before — no rebuild"
        )
        return _finish(ctx, target, existing, actor, log, reused=True)
    _refuse_existing_tag(target)
    config = builder_config(registry)
    local_tag = f"localhost/{target.name}:{target.tag}".lower()
    labels = oci_labels(
        title=target.name,
        version=target.tag,
        source_request=target.source,
        recipe_text=recipe.hashed_text,
        created=timezone.now(),
    )
    if recipe.base_digest:
        labels["org.opencontainers.image.base.digest"] = recipe.base_digest
        labels["org.opencontainers.image.base.name"] = recipe.bases[-1]
    Path(settings.PORTAL_BUILD_WORK_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bip-job-", dir=settings.PORTAL_BUILD_WORK_DIR) as work:
        if recipe.bootstrap_spec is not None:
            spec = recipe.bootstrap_spec
            if spec.mirror is None and settings.PORTAL_BOOTSTRAP_MIRROR:
                spec = replace(spec, mirror=settings.PORTAL_BOOTSTRAP_MIRROR)
            log.progress(5, f"bootstrapping {spec.suite} ({spec.variant}) with mmdebstrap")
            tar = _rootfs(spec, config, work, log, ctx)
            log.progress(55, "making the image from the root filesystem")
            image_from_rootfs(
                tar,
                tag=local_tag,
                env=dict(recipe.env),
                cmd=list(recipe.cmd),
                labels=labels,
                config=config,
                log=log,
                should_cancel=ctx.should_cancel,
            )
        else:
            log.progress(5, "building the Dockerfile with buildah")
            context = Path(work) / "context"
            context.mkdir()
            retry_registry(
                ctx,
                log,
                "buildah bud",
                lambda: build_dockerfile(
                    recipe.build_text,
                    context_dir=str(context),
                    tag=local_tag,
                    labels=labels,
                    build_args={},
                    config=config,
                    log=log,
                    should_cancel=ctx.should_cancel,
                    allowed_images=recipe.copy_from,
                ),
            )
    try:
        # A candidate never goes under the public tag: publishing moves that (M2).
        staging = candidate_tag(target.tag, ctx.job.pk)
        destination = f"{registry.host}/{target.name}:{staging}"
        info = push_and_read_back(
            ctx,
            log,
            local_tag=local_tag,
            registry=registry,
            repository=target.name,
            tag=staging,
            config=config,
            progress=(75, 88),
        )
    finally:
        with contextlib.suppress(BuildError, ValueError):
            remove_image(local_tag, config)
    log.progress(95, "recording the candidate version")
    with transaction.atomic():
        image = target.image or _create_catalog_entry(target, registry, actor)
        version, created = image_version_record(
            actor=actor,
            image=image,
            registry=registry,
            tag=target.tag,
            digest=info.digest,
            size=info.size,
            arch=info.architecture,
            recipe=target.recipe,
        )
        if created:
            ImageVersion.objects.filter(pk=version.pk).update(
                recipe_sha256=recipe.sha256, base_digest=recipe.base_digest, build_job=ctx.job
            )
            version.refresh_from_db()
    log.portal(f"pushed {destination}@{info.digest} ({info.architecture}, {info.size} bytes)")
    return _finish(ctx, target, version, actor, log, reused=False)


def candidate_tag(tag: str, job_id: int) -> str:
    """The staging tag a build pushes its candidate under: `<tag>-candidate-<job id>`."""
    suffix = f"-candidate-{job_id}"
    return tag[: 128 - len(suffix)] + suffix


def is_candidate_tag(tag: str) -> bool:
    """Whether `tag` is a build's staging tag (`candidate_tag`), not a version's own tag."""
    return _CANDIDATE_TAG.search(tag) is not None


def _refuse_existing_tag(target: BuildTarget) -> None:
    """Versions are immutable: a name:tag that has a version is never built again."""
    taken = image_version_with_tag(name=target.name, tag=target.tag)
    if taken is not None:
        raise JobFailure(
            _(
                "%(name)s:%(tag)s already has version %(digest)s (%(state)s); versions are "
                "immutable: request a new tag.",
                name=target.name,
                tag=target.tag,
                digest=taken.digest,
                state=str(taken.state),
            )
        )


def _create_catalog_entry(target: BuildTarget, registry: Registry, actor: Actor) -> BaseImage:
    """A new catalog entry for a request that names an image the catalog does not have yet."""
    if target.request_id is None:  # the portal's own builds start from a catalog entry
        raise JobFailure(_("%(name)s is not in the catalog.", name=target.name))
    request = ImageRequest.objects.get(pk=target.request_id)
    image = base_image_create(
        actor=actor,
        name=request.name,
        kind=request.kind,
        os_family=request.os_family,
        os_version=request.os_version,
        toolchain=request.toolchain,
        description=request.justification[:500],
        owner_team=request.team,
        registry=registry,
        status=ImageStatus.APPROVED,
    )
    ImageRequest.objects.filter(pk=request.pk).update(base_image=image)
    return image


def _finish(
    ctx: JobContext,
    target: BuildTarget,
    version: ImageVersion,
    actor: Actor,
    log: JobLog,
    *,
    reused: bool,
) -> dict[str, Any]:
    if target.request_id is not None:
        image_request_mark_built(
            request_id=target.request_id,
            version=version,
            actor=actor,
            note=("reused " if reused else "") + f"{version.tag} {version.digest}",
        )
    if target.publish and version.state == VersionState.CANDIDATE:
        try:
            version = image_version_publish(version=version, actor=actor)
            log.portal(f"published {version.digest} (auto-publish)")
        except GateBlocked as exc:  # e.g. not scanned yet: the scan's gate publishes it later
            log.portal(f"not published yet, the publish gate says: {exc.detail}")
    # Every successful build is scanned (a digest scanned before reuses its SBOM).
    scan_job = image_version_scan_start(version_id=version.pk, actor=actor)
    log.portal(f"scan job #{scan_job.pk} queued for {version.digest}")
    ctx.set_result_object(version)
    log.flush()
    return {
        "image": target.name,
        "tag": target.tag,
        "digest": version.digest,
        "pull_ref": version.pull_ref,
        "size": version.size,
        "arch": version.arch,
        "state": version.state,
        "version_id": version.pk,
        "reused": reused,
        "recipe_sha256": version.recipe_sha256,
        "base_digest": version.base_digest,
        "scan_job_id": scan_job.pk,
    }


def build_image(ctx: JobContext) -> dict[str, Any]:
    """The `images.build` handler: build, push, read back, record; fail the request on error."""
    actor = Actor.system_actor(f"job:{ctx.job.pk}")
    request_id = ctx.params.get("request_id")

    def fail(message: str) -> None:
        if request_id:
            image_request_mark_failed(request_id=request_id, actor=actor, error=message)

    try:
        target = build_target(ctx)
        if request_id:
            try:
                image_request_mark_building(request_id=request_id, actor=actor)
            except Exception as exc:
                raise JobFailure(_("Nothing to build: %(error)s", error=str(exc))) from exc
        return _build(ctx, target, actor)
    except (BuildCancelled, JobCancelled) as exc:
        fail(_("The build was cancelled."))
        raise JobCancelled from exc
    except BuildTimeout as exc:
        fail(exc.message)
        raise JobFailure(exc.message) from exc
    except BuildError as exc:
        fail(exc.message)
        raise JobFailure(exc.message) from exc
    except RegistryError as exc:
        message = _("Registry error: %(error)s", error=str(exc))
        fail(message)
        raise JobFailure(message) from exc
    except JobFailure as exc:
        fail(str(exc))
        raise
    except Exception as exc:
        fail(_("Internal error: %(kind)s: %(error)s", kind=type(exc).__name__, error=str(exc)))
        raise
