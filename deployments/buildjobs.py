"""Jobs on the `builds` queue that compile and bake: source builds and app-image builds.

* `deployments.source_build` — unpack a stored source archive safely, `buildah from` the
  pinned build image, run the command offline with the source read-only at /src and an
  output directory at /out, register /out/<output_path> as a BinaryVersion (the upload's
  code path) with its SLSA provenance. A failing command fails the job with the command's
  output tail; nothing is registered.
* `deployments.app_image_build` — the image-mode Dockerfile of a deployment's binary on a
  runtime version, built with buildah, pushed to `apps/<service>`, read back, and the pushed
  image checked to sit on exactly the runtime's layers.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.exceptions import APIException

from images.builder import (
    BuildCancelled,
    BuildError,
    build_dockerfile,
    oci_labels,
    pull_images,
    remove_image,
)
from images.builder.container import Mount, container_run, working_container
from images.buildjobs import JobLog, builder_config, push_and_read_back, retry_registry
from images.models import ImageVersion, Registry
from images.registry import RegistryError
from images.texts import _
from portal.actors import Actor
from portal.jobs import JobCancelled, JobContext, JobFailure, job_kind
from portal.models import Job

from .choices import BinaryState, PlanItemState
from .manifests import ManifestError
from .manifests.dockerfile import render_app_dockerfile
from .models import BinaryVersion, Deployment, PlanItem
from .services.app_images import APP_IMAGE_JOB_KIND, APPS_REPOSITORY, app_image_tag
from .services.source_build_checks import archive_limits
from .services.source_build_jobs import (
    source_build_job_failed,
    source_build_mark_running,
    source_build_succeeded,
)
from .services.source_builds import SOURCE_BUILD_JOB_KIND
from .sourcearchive import SourceArchiveError, unpack
from .storage import binary_storage

_CHUNK = 1 << 20
_BASE_DIGEST_LABEL = "org.opencontainers.image.base.digest"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def _copy_verified(name: str, sha256: str, target: Path, what: str) -> None:
    """Copy a stored file to `target`, refusing it unless it hashes to `sha256`."""
    digest = hashlib.sha256()
    try:
        source = binary_storage().open(name, "rb")
    except FileNotFoundError as exc:
        raise JobFailure(
            _("%(what)s is missing from storage (%(name)s).", what=what, name=name)
        ) from exc
    with source, target.open("wb") as handle:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
            handle.write(chunk)
    if digest.hexdigest() != sha256:
        raise JobFailure(
            _(
                "%(what)s in storage has sha256 %(actual)s, not the recorded %(sha256)s: "
                "storage is corrupt.",
                what=what,
                actual=digest.hexdigest(),
                sha256=sha256,
            )
        )


def _collect_output(out: Path, relative: str, target: Path) -> Path:
    """Copy /out/<relative> to `target`: a regular file, no link anywhere on its path.

    Raises:
        JobFailure: missing, a symbolic link (it could point at the worker's files), not a
            regular file, or larger than PORTAL_BINARY_MAX_BYTES.
    """
    current = out
    for part in relative.split("/"):
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError as exc:
            raise JobFailure(
                _(
                    "The build command succeeded but left no /out/%(path)s: write the output "
                    "there (e.g. gcc -o /out/%(path)s …).",
                    path=str(relative),
                )
            ) from exc
        if stat.S_ISLNK(info.st_mode):
            raise JobFailure(
                _(
                    "/out/%(path)s: %(link)s is a symbolic link; the output must be a regular "
                    "file. Nothing was registered.",
                    path=str(relative),
                    link=str(current.relative_to(out)),
                )
            )
    if not stat.S_ISREG(info.st_mode):
        raise JobFailure(
            _("/out/%(path)s is not a regular file. Nothing was registered.", path=str(relative))
        )
    limit = int(settings.PORTAL_BINARY_MAX_BYTES)
    if info.st_size > limit:
        raise JobFailure(
            _(
                "/out/%(path)s is larger than the binary limit of %(limit)s bytes.",
                path=str(relative),
                limit=limit,
            )
        )
    fd = os.open(current, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as source, target.open("wb") as handle:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            handle.write(chunk)
    return target


def _work_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    Path(settings.PORTAL_BUILD_WORK_DIR).mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=prefix, dir=settings.PORTAL_BUILD_WORK_DIR)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
        )
    if isinstance(exc, APIException):
        return str(exc.detail)
    return str(exc)


def _source_build(ctx: JobContext, build_id: int) -> dict[str, Any]:
    build = source_build_mark_running(build_id=build_id, job=ctx.job)
    started = timezone.now()
    log = JobLog(ctx, span=(30, 85))
    image = build.build_version
    reference = image.pull_ref
    config = builder_config(image.registry)
    log.progress(2, f"source build #{build.pk}: {build.service.name} {build.version}")
    with _work_dir("bip-source-") as work:
        archive = Path(work) / "source.tar.gz"
        src, out = Path(work) / "src", Path(work) / "out"
        src.mkdir()
        out.mkdir()
        log.progress(5, f"unpacking {build.source_name} (sha256 {build.source_sha256[:12]})")
        _copy_verified(build.source_file, build.source_sha256, archive, "The source archive")
        try:
            summary = unpack(archive, src, archive_limits())
        except SourceArchiveError as exc:
            raise JobFailure(
                _("The source archive is refused: %(error)s. Nothing was kept.", error=str(exc))
            ) from exc
        archive.unlink()
        log.portal(f"{summary.entries} entries, {summary.unpacked_bytes} bytes unpacked")
        log.progress(15, f"pulling the build image {reference}")
        retry_registry(
            ctx,
            log,
            f"pull {reference}",
            lambda: pull_images(
                [reference], config=config, log=log, should_cancel=ctx.should_cancel
            ),
        )
        log.progress(30, f"running {build.command!r} in {image.base_image.name}:{image.tag}")
        with working_container(
            reference, config=config, log=log, should_cancel=ctx.should_cancel, pull=False
        ) as container:
            try:
                container_run(
                    container,
                    build.command,
                    mounts=[Mount(str(src), "/src", read_only=True), Mount(str(out), "/out")],
                    workdir="/src",
                    config=config,
                    log=log,
                    should_cancel=ctx.should_cancel,
                )
            except (BuildCancelled, JobCancelled):
                raise
            except BuildError as exc:
                log.flush()
                tail = exc.output_tail.strip()[-4000:]
                raise JobFailure(
                    _(
                        "The build command failed (exit code %(code)s); nothing was "
                        "registered. Its output ends with:\n%(tail)s",
                        code=str(exc.returncode),
                        tail=tail,
                    )
                ) from exc
        log.flush()
        log.progress(88, f"collecting /out/{build.output_path}")
        name = _UNSAFE.sub("_", build.output_path.rsplit("/", 1)[-1]) or build.service.name
        collected = Path(work) / "collected"
        collected.mkdir()
        output = _collect_output(out, build.output_path, collected / name)
        log.progress(92, "registering the binary version")
        try:
            binary = source_build_succeeded(
                build_id=build.pk,
                output=output,
                job_id=ctx.job.pk,
                started_on=started,
                actor=Actor.system_actor(f"job:{ctx.job.pk}"),
            )
        except (ValidationError, APIException) as exc:
            raise JobFailure(
                _(
                    "The output cannot be registered as %(service)s %(version)s: %(error)s",
                    service=build.service.name,
                    version=build.version,
                    error=_error_text(exc),
                )
            ) from exc
    ctx.set_result_object(binary)
    log.portal(f"registered {binary} sha256 {binary.sha256} built in {reference}")
    log.flush()
    return {
        "source_build": build.pk,
        "binary_version": binary.pk,
        "sha256": binary.sha256,
        "built_in": reference,
    }


@job_kind(
    SOURCE_BUILD_JOB_KIND,
    queue="builds",
    timeout_seconds=3600,
    max_attempts=1,
    title="Source build",
    on_failure=source_build_job_failed,
)
def source_build(ctx: JobContext) -> dict[str, Any]:
    """Compile a source build (params: `source_build_id`) and register its output."""
    build_id = ctx.params.get("source_build_id")
    if not isinstance(build_id, int):
        raise JobFailure(_("No source build to run (%(build)s).", build=repr(build_id)))
    try:
        return _source_build(ctx, build_id)
    except (BuildCancelled, JobCancelled) as exc:
        raise JobCancelled from exc
    except BuildError as exc:
        raise JobFailure(exc.message) from exc
    except RegistryError as exc:
        raise JobFailure(_("Registry error: %(error)s", error=str(exc))) from exc


# --- app images -----------------------------------------------------------------------------


def _default_registry() -> Registry:
    registry = Registry.objects.filter(is_default=True).first() or Registry.objects.first()
    if registry is None:
        raise JobFailure(
            _("No registry is configured to push app images to (Registry, is_default).")
        )
    return registry


def _diff_ids(config: dict[str, Any], what: str) -> list[str]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise JobFailure(
            _("%(what)s: the image config lists no layers (rootfs.diff_ids).", what=what)
        )
    return list(ids)


def verify_base(
    *, registry: Registry, repository: str, digest: str, runtime: ImageVersion
) -> dict[str, Any]:
    """Check the pushed image sits on `runtime`: its first layers are exactly the runtime's
    (`rootfs.diff_ids`) and its base-digest label names the runtime's digest.

    Raises:
        JobFailure: either differs.
    """
    with runtime.registry.client() as client:
        base = client.image_config(runtime.base_image.name, runtime.digest)
    with registry.client() as client:
        app = client.image_config(repository, digest)
    base_ids = _diff_ids(base, runtime.pull_ref)
    app_ids = _diff_ids(app, f"{registry.host}/{repository}@{digest}")
    if app_ids[: len(base_ids)] != base_ids:
        raise JobFailure(
            _(
                "The pushed image %(image)s does not sit on %(runtime)s: its first %(count)s "
                "layers are not the runtime's.",
                image=f"{repository}@{digest}",
                runtime=runtime.pull_ref,
                count=len(base_ids),
            )
        )
    inner = app.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    label = labels.get(_BASE_DIGEST_LABEL) if isinstance(labels, dict) else None
    if label != runtime.digest:
        raise JobFailure(
            _(
                "The pushed image's %(label)s is %(value)s, not %(digest)s.",
                label=_BASE_DIGEST_LABEL,
                value=repr(label),
                digest=runtime.digest,
            )
        )
    return {"base_layers": len(base_ids), "layers": len(app_ids)}


def _app_image(ctx: JobContext, deployment: Deployment, runtime: ImageVersion) -> dict[str, Any]:
    log = JobLog(ctx, span=(10, 70))
    service = deployment.service.name
    binary = deployment.binary_version
    if binary is None:
        raise JobFailure(
            _(
                "%(deployment)s has no binary version to build an app image of.",
                deployment=str(deployment),
            )
        )
    if binary.state == BinaryState.PURGED:
        raise JobFailure(_("%(binary)s is purged: its file is gone.", binary=str(binary)))
    log.progress(2, f"app image of {deployment}: {binary} on {runtime}")
    try:
        dockerfile = render_app_dockerfile(
            runtime.pull_ref, binary.filename, tuple(deployment.command), tuple(deployment.args)
        )
    except ManifestError as exc:
        raise JobFailure(
            _("The image-mode Dockerfile cannot be rendered: %(error)s", error=str(exc))
        ) from exc
    registry = _default_registry()
    config = builder_config(registry)
    repository = f"{APPS_REPOSITORY}/{service}"
    tag = app_image_tag(binary.version, runtime.digest)
    local_tag = f"localhost/bip-app/{service}:job{ctx.job.pk}"
    labels = oci_labels(
        title=repository,
        version=tag,
        source_request=f"{settings.PORTAL_URL.rstrip('/')}/deployments/{deployment.pk}/",
        recipe_text=dockerfile,
        created=timezone.now(),
        revision=binary.commit,
    )
    try:
        with _work_dir("bip-app-") as work:
            context = Path(work) / "context"
            context.mkdir()
            log.progress(5, f"build context: {binary.filename} ({binary.size} bytes)")
            _copy_verified(binary.file, binary.sha256, context / binary.filename, str(binary))
            log.portal("Dockerfile:\n" + dockerfile)
            retry_registry(
                ctx,
                log,
                "buildah bud",
                lambda: build_dockerfile(
                    dockerfile,
                    context_dir=str(context),
                    tag=local_tag,
                    labels=labels,
                    build_args={},
                    config=config,
                    log=log,
                    should_cancel=ctx.should_cancel,
                ),
            )
        info = push_and_read_back(
            ctx,
            log,
            local_tag=local_tag,
            registry=registry,
            repository=repository,
            tag=tag,
            config=config,
            progress=(75, 85),
        )
    finally:
        with contextlib.suppress(BuildError, ValueError):
            remove_image(local_tag, config)
    log.progress(90, f"verifying the base layers of {repository}@{info.digest}")
    checked = retry_registry(
        ctx,
        log,
        "verify the base",
        lambda: verify_base(
            registry=registry, repository=repository, digest=info.digest, runtime=runtime
        ),
    )
    app_image = f"{registry.host}/{repository}@{info.digest}"
    log.portal(
        f"pushed {registry.host}/{repository}:{tag} as {app_image}: its first "
        f"{checked['base_layers']} layers are {runtime.pull_ref}'s"
    )
    plan_item_id = ctx.params.get("plan_item_id")
    if plan_item_id is not None:
        # Imported late: the plans module is above this one (it starts these jobs).
        plans = importlib.import_module("deployments.services.plans")
        plans.plan_item_app_image_built(
            item_id=plan_item_id,
            app_image=app_image,
            actor=Actor.system_actor(f"job:{ctx.job.pk}"),
        )
    log.flush()
    return {
        "app_image": app_image,
        "tag": f"{registry.host}/{repository}:{tag}",
        "digest": info.digest,
        "base_digest": runtime.digest,
        "runtime_version": runtime.pk,
        "deployment": deployment.pk,
        "binary_version": binary.pk,
        "dockerfile": dockerfile,
        **checked,
    }


def _app_image_failed(job: Job) -> None:
    """An app-image build of a plan item ended failed or cancelled: the item fails and stops
    its plan (an item no longer building — aborted, re-targeted — is left as it is)."""
    plan_item_id = job.params.get("plan_item_id")
    if plan_item_id is None:
        return
    plans = importlib.import_module("deployments.services.plans")
    if PlanItem.objects.filter(pk=plan_item_id, state=PlanItemState.BUILDING).exists():
        plans.plan_item_app_image_failed(
            item_id=plan_item_id,
            error=job.error or f"job {job.pk} {job.state}",
            actor=Actor.system_actor(f"job:{job.pk}"),
        )


@job_kind(
    APP_IMAGE_JOB_KIND,
    queue="builds",
    timeout_seconds=3600,
    max_attempts=2,
    title="App image build",
    on_failure=_app_image_failed,
)
def app_image_build(ctx: JobContext) -> dict[str, Any]:
    """Build a deployment's app image on a runtime version (params: `deployment_id`,
    `runtime_version_id`, optional `plan_item_id`); result `app_image` (digest-pinned)."""
    deployment = (
        Deployment.objects.select_related("service__team", "binary_version", "environment")
        .filter(pk=ctx.params.get("deployment_id"))
        .first()
    )
    runtime = (
        ImageVersion.objects.select_related("base_image", "registry")
        .filter(pk=ctx.params.get("runtime_version_id"))
        .first()
    )
    if deployment is None or runtime is None:
        raise JobFailure(
            _(
                "Nothing to build: deployment #%(deployment)s or runtime version "
                "#%(runtime)s does not exist.",
                deployment=str(ctx.params.get("deployment_id")),
                runtime=str(ctx.params.get("runtime_version_id")),
            )
        )
    try:
        return _app_image(ctx, deployment, runtime)
    except (BuildCancelled, JobCancelled) as exc:
        raise JobCancelled from exc
    except BuildError as exc:
        raise JobFailure(exc.message) from exc
    except RegistryError as exc:
        raise JobFailure(_("Registry error: %(error)s", error=str(exc))) from exc


__all__ = ["BinaryVersion", "app_image_build", "source_build", "verify_base"]
