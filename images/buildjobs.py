"""The build job: build a recipe with buildah (or bootstrap it), push it, record the candidate.

One job kind, `images.build` on the `builds` queue, serves approved requests
(`params={"request_id": …}`) and the portal's own builds such as the demo bootstraps
(`params={"image_id", "tag", "recipe_kind", "recipe", "publish"}`). Steps and progress:

    2%  resolve the recipe (Dockerfile FROM lines pinned by digest; bootstrap spec parsed)
        → the same recipe sha256 on the same base digest reuses the existing version
    5-70% build (`STEP i/n` lines of buildah drive the progress) or bootstrap + commit
    75% push to the image's registry        (registry unavailable: retried with backoff)
    88% read digest, size, arch back         (idem)
    95% record the candidate ImageVersion, move the request to `scanning`
        → publish when asked (demo) or when the auto-publish rule is on

Tool output streams into the job log (batched: at most one write per half second). Cancel
kills the tool's process group (the builder asks `ctx.should_cancel`); every tool call has
`PORTAL_BUILD_TIMEOUT_SECONDS`. A failure leaves no version and fails the request with the
job's error.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.actors import Actor
from portal.jobs import JobCancelled, JobContext, JobFailure, job_append_log, job_set_progress

from .builder import (
    BootstrapSpec,
    BuildCancelled,
    BuilderConfig,
    BuildError,
    BuildTimeout,
    PullUnavailable,
    PushUnavailable,
    bootstrap_command,
    bootstrap_rootfs,
    build_dockerfile,
    image_from_rootfs,
    oci_labels,
    push_image,
    remove_image,
)
from .choices import ImageStatus, RecipeKind, VersionState
from .models import BaseImage, ImageRequest, ImageVersion, Registry
from .recipes import (
    RecipeError,
    dockerfile_from_lines,
    parse_bootstrap_recipe,
    pin_dockerfile,
    recipe_sha256,
)
from .references import ReferenceError
from .registry import ManifestInfo, RegistryClient, RegistryError, RegistryUnavailable
from .selectors import base_image_resolve
from .services import (
    auto_publish_enabled,
    base_image_create,
    image_request_mark_building,
    image_request_mark_built,
    image_request_mark_failed,
    image_version_publish,
    image_version_record,
    runtime_env_for,
)

T = TypeVar("T")
_STEP_RE = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
TRANSIENT = (PushUnavailable, PullUnavailable, RegistryUnavailable)


@dataclass(frozen=True)
class BuildTarget:
    """What to build, whichever way the job was started."""

    name: str
    tag: str
    kind: str
    recipe_kind: str
    recipe: str
    image: BaseImage | None
    team: Any
    request_id: int | None
    publish: bool
    source: str


@dataclass(frozen=True)
class ResolvedRecipe:
    """A recipe ready to build: the text to build, its sha256 and its base's digest."""

    sha256: str
    hashed_text: str
    build_text: str
    base_digest: str
    bases: tuple[str, ...]
    bootstrap_spec: BootstrapSpec | None = None
    env: tuple[tuple[str, str], ...] = ()
    cmd: tuple[str, ...] = ()


class JobLog:
    """Tool output → job log, batched (one UPDATE per `interval`), with STEP-based progress."""

    def __init__(self, ctx: JobContext, *, interval: float = 0.5, span: tuple[int, int] = (5, 70)):
        self.ctx = ctx
        self.interval = interval
        self.span = span
        self._lines: list[str] = []
        self._size = 0
        self._flushed_at = time.monotonic()

    def __call__(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        match = _STEP_RE.match(line)
        if match:
            self.flush()
            done, total = int(match.group(1)) - 1, max(1, int(match.group(2)))
            low, high = self.span
            job_set_progress(
                job_id=self.ctx.job.pk,
                percent=low + (high - low) * done // total,
                step=line[:200],
            )
        elif self._size > 32_768 or time.monotonic() - self._flushed_at >= self.interval:
            self.flush()

    def portal(self, text: str) -> None:
        """A line of the portal's own."""
        self(f"[portal] {text}")
        self.flush()

    def progress(self, percent: int, step: str) -> None:
        """Flush, then report progress (its own log line)."""
        self.flush()
        self.ctx.progress(percent, step)

    def flush(self) -> None:
        """Write the buffered lines."""
        if self._lines:
            job_append_log(job_id=self.ctx.job.pk, text="\n".join(self._lines) + "\n")
            self._lines.clear()
            self._size = 0
        self._flushed_at = time.monotonic()


def builder_config(registry: Registry) -> BuilderConfig:
    """buildah settings for pushing to `registry` (TLS and credentials from the Registry)."""
    username, password = registry.credentials()
    if (username is None) != (password is None):
        raise JobFailure(
            f"Registry {registry.name}: set both PORTAL_REGISTRY_{registry.credentials_env}"
            "_USERNAME and _PASSWORD, or neither."
        )
    for directory in (settings.PORTAL_BUILDAH_ROOT, settings.PORTAL_BUILDAH_RUNROOT):
        Path(directory).mkdir(parents=True, exist_ok=True)
    return BuilderConfig(
        storage_root=settings.PORTAL_BUILDAH_ROOT,
        run_root=settings.PORTAL_BUILDAH_RUNROOT,
        # buildah's --tls-verify=false is also what lets it speak plain HTTP at all.
        tls_verify=registry.tls_verify and registry.uses_tls,
        registry_username=username,
        registry_password=password,
        timeout=settings.PORTAL_BUILD_TIMEOUT_SECONDS,
    )


def retry_registry(ctx: JobContext, log: JobLog, what: str, call: Callable[[], T]) -> T:
    """Run `call`, retrying registry unavailability with exponential backoff, then fail."""
    budget = max(0, int(settings.PORTAL_BUILD_REGISTRY_RETRIES))
    delay = float(settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS)
    for attempt in range(budget + 1):
        try:
            return call()
        except TRANSIENT as exc:
            message = getattr(exc, "message", None) or str(exc)
            if attempt == budget:
                raise JobFailure(
                    f"{what}: the registry stayed unavailable after {budget + 1} attempts: "
                    f"{message}"
                ) from exc
            wait = delay * 2**attempt
            log.portal(
                f"{what}: registry unavailable ({message[:300]}); retry {attempt + 1} of "
                f"{budget} in {wait:g} s"
            )
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                ctx.check_cancelled()
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    raise AssertionError("unreachable")  # pragma: no cover


def _target(ctx: JobContext) -> BuildTarget:
    params = ctx.params
    if params.get("request_id"):
        request = (
            ImageRequest.objects.select_related("base_image", "team")
            .filter(pk=params["request_id"])
            .first()
        )
        if request is None:
            raise JobFailure(f"Image request #{params['request_id']} does not exist.")
        return BuildTarget(
            name=request.name,
            tag=request.tag,
            kind=request.kind,
            recipe_kind=request.recipe_kind,
            recipe=request.recipe,
            image=request.base_image or BaseImage.objects.filter(name=request.name).first(),
            team=request.team,
            request_id=request.pk,
            publish=auto_publish_enabled(),
            source=f"{settings.PORTAL_URL.rstrip('/')}/image-requests/{request.pk}/",
        )
    image = BaseImage.objects.select_related("registry").filter(pk=params.get("image_id")).first()
    if image is None:
        raise JobFailure(f"Catalog image #{params.get('image_id')} does not exist.")
    return BuildTarget(
        name=image.name,
        tag=str(params.get("tag") or ""),
        kind=image.kind,
        recipe_kind=str(params.get("recipe_kind") or ""),
        recipe=str(params.get("recipe") or ""),
        image=image,
        team=image.owner_team,
        request_id=None,
        publish=bool(params.get("publish")) or auto_publish_enabled(),
        source=str(params.get("source") or f"job:{ctx.job.pk}"),
    )


def _registry_for(target: BuildTarget) -> Registry:
    if target.image is not None and target.image.registry is not None:
        return target.image.registry
    registry = Registry.objects.filter(is_default=True).first() or Registry.objects.first()
    if registry is None:
        raise JobFailure("No registry is configured to push to; add one (Registry, is_default).")
    return registry


def resolve_recipe(target: BuildTarget) -> ResolvedRecipe:
    """Parse the recipe; pin every external FROM to an approved or candidate version.

    Raises:
        JobFailure: the recipe is invalid or names a base the portal cannot build on.
    """
    try:
        if target.recipe_kind == RecipeKind.BOOTSTRAP:
            recipe = parse_bootstrap_recipe(target.recipe, default_env=runtime_env_for(target.kind))
            canonical = recipe.canonical()
            return ResolvedRecipe(
                sha256=recipe_sha256(canonical),
                hashed_text=canonical,
                build_text=canonical,
                base_digest="",
                bases=(),
                bootstrap_spec=recipe.spec,
                env=tuple(recipe.env.items()),
                cmd=recipe.cmd,
            )
        if target.recipe_kind != RecipeKind.DOCKERFILE:
            raise JobFailure(f"Unknown recipe kind {target.recipe_kind!r}.")
        lines = dockerfile_from_lines(target.recipe)
    except RecipeError as exc:
        raise JobFailure(f"The recipe is invalid: {exc}") from exc
    pins: dict[int, str] = {}
    digests: list[str] = []
    for line in lines:
        if not line.external:
            continue
        try:
            res = base_image_resolve(line.image)
        except ReferenceError as exc:
            raise JobFailure(f"Line {line.line}: {exc}") from exc
        version = res.version
        if version is None or version.state not in VersionState.usable_as_base():
            why = "; ".join(res.reasons) or "no approved or candidate version"
            raise JobFailure(
                f"Line {line.line}: FROM {line.image} is not an approved (or candidate) image "
                f"version in the portal's registry: {why}"
            )
        pins[line.line] = version.pull_ref
        digests.append(version.digest)
    if not digests:
        raise JobFailure("The Dockerfile builds FROM no catalog image (scratch only).")
    return ResolvedRecipe(
        sha256=recipe_sha256(target.recipe),
        hashed_text=target.recipe,
        build_text=pin_dockerfile(target.recipe, pins),
        base_digest=digests[-1],
        bases=tuple(pins.values()),
    )


def _existing_version(target: BuildTarget, recipe: ResolvedRecipe) -> ImageVersion | None:
    return (
        ImageVersion.objects.select_related("base_image", "registry")
        .filter(
            base_image__name=target.name,
            recipe_sha256=recipe.sha256,
            base_digest=recipe.base_digest,
            state__in=[VersionState.CANDIDATE, VersionState.APPROVED],
        )
        .order_by("-created_at")
        .first()
    )


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
        raise JobFailure("No tag to build.")
    registry = _registry_for(target)
    recipe = resolve_recipe(target)
    for base in recipe.bases:
        log.portal(f"base pinned: {base}")
    existing = _existing_version(target, recipe)
    if existing is not None:
        log.portal(
            f"reusing existing version {existing.digest} ({existing.state}): the same recipe "
            f"(sha256 {recipe.sha256[:12]}) on the same base digest was built before — no rebuild"
        )
        return _finish(ctx, target, existing, actor, log, reused=True)
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
                ),
            )
    try:
        destination = f"{registry.host}/{target.name}:{target.tag}"
        log.progress(75, f"pushing to {destination}")
        pushed = retry_registry(
            ctx,
            log,
            f"push to {registry.host}",
            lambda: push_image(
                local_tag, destination, config=config, log=log, should_cancel=ctx.should_cancel
            ),
        )
        log.progress(88, f"reading the pushed manifest back from {registry.host}")
        info = retry_registry(
            ctx, log, f"read back from {registry.host}", lambda: _read_back(registry, target)
        )
    finally:
        with contextlib.suppress(BuildError, ValueError):
            remove_image(local_tag, config)
    if info.digest != pushed:
        log.portal(f"note: buildah reported {pushed}, the registry serves {info.digest}")
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


def _read_back(registry: Registry, target: BuildTarget) -> ManifestInfo:
    username, password = registry.credentials()
    with RegistryClient(
        registry.url, username=username, password=password, verify=registry.tls_verify
    ) as client:
        return client.manifest_info(target.name, target.tag)


def _create_catalog_entry(target: BuildTarget, registry: Registry, actor: Actor) -> BaseImage:
    """A new catalog entry for a request that names an image the catalog does not have yet."""
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
        version = image_version_publish(version=version, actor=actor)
        log.portal(f"published {version.digest} (auto-publish)")
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
    }


def build_image(ctx: JobContext) -> dict[str, Any]:
    """The `images.build` handler: build, push, read back, record; fail the request on error."""
    actor = Actor.system_actor(f"job:{ctx.job.pk}")
    request_id = ctx.params.get("request_id")

    def fail(message: str) -> None:
        if request_id:
            image_request_mark_failed(request_id=request_id, actor=actor, error=message)

    try:
        target = _target(ctx)
        if request_id:
            try:
                image_request_mark_building(request_id=request_id, actor=actor)
            except Exception as exc:
                raise JobFailure(f"Nothing to build: {exc}") from exc
        return _build(ctx, target, actor)
    except (BuildCancelled, JobCancelled) as exc:
        fail("The build was cancelled.")
        raise JobCancelled from exc
    except BuildTimeout as exc:
        fail(exc.message)
        raise JobFailure(exc.message) from exc
    except BuildError as exc:
        fail(exc.message)
        raise JobFailure(exc.message) from exc
    except RegistryError as exc:
        fail(f"Registry error: {exc}")
        raise JobFailure(f"Registry error: {exc}") from exc
    except JobFailure as exc:
        fail(str(exc))
        raise
    except Exception as exc:
        fail(f"Internal error: {type(exc).__name__}: {exc}")
        raise
