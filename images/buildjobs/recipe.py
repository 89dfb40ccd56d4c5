"""What a build job builds: its target (a request, or the portal's own build) and the recipe
resolved for building (FROM lines pinned by digest, or a bootstrap spec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from images.texts import _
from portal.jobs import JobContext, JobFailure

from ..builder import BootstrapSpec
from ..choices import RecipeKind, VersionState
from ..models import BaseImage, ImageRequest, ImageVersion, Registry
from ..recipes import (
    RecipeError,
    dockerfile_copy_from_images,
    dockerfile_from_lines,
    parse_bootstrap_recipe,
    pin_copy_from,
    pin_dockerfile,
    recipe_sha256,
)
from ..references import ReferenceError
from ..selectors import base_image_resolve
from ..services import auto_publish_enabled, runtime_env_for


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
    copy_from: tuple[str, ...] = ()  # the pinned images COPY --from= may name


def build_target(ctx: JobContext) -> BuildTarget:
    params = ctx.params
    if params.get("request_id"):
        request = (
            ImageRequest.objects.select_related("base_image", "team")
            .filter(pk=params["request_id"])
            .first()
        )
        if request is None:
            raise JobFailure(
                _("Image request #%(request)s does not exist.", request=str(params["request_id"]))
            )
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
        raise JobFailure(
            _("Catalog image #%(image)s does not exist.", image=str(params.get("image_id")))
        )
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


def registry_for(target: BuildTarget) -> Registry:
    if target.image is not None and target.image.registry is not None:
        return target.image.registry
    registry = Registry.objects.filter(is_default=True).first() or Registry.objects.first()
    if registry is None:
        raise JobFailure(_("No registry is configured to push to; add one (Registry, is_default)."))
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
            raise JobFailure(_("Unknown recipe kind %(kind)s.", kind=repr(target.recipe_kind)))
        lines = dockerfile_from_lines(target.recipe)
        copies = dockerfile_copy_from_images(target.recipe)
    except RecipeError as exc:
        raise JobFailure(_("The recipe is invalid: %(error)s", error=str(exc))) from exc
    pins: dict[int, str] = {}
    digests: list[str] = []
    for line in lines:
        if not line.external:
            continue
        version = _usable_version(line.line, f"FROM {line.image}", line.image)
        pins[line.line] = version.pull_ref
        digests.append(version.digest)
    if not digests:
        raise JobFailure(_("The Dockerfile builds FROM no catalog image (scratch only)."))
    copy_pins = {
        copy.line: _usable_version(copy.line, f"COPY --from={copy.image}", copy.image).pull_ref
        for copy in copies
    }
    return ResolvedRecipe(
        sha256=recipe_sha256(target.recipe),
        hashed_text=target.recipe,
        build_text=pin_copy_from(pin_dockerfile(target.recipe, pins), copy_pins),
        base_digest=digests[-1],
        bases=tuple(pins.values()),
        copy_from=tuple(dict.fromkeys(copy_pins.values())),
    )


def _usable_version(line: int, shown: str, image: str) -> ImageVersion:
    """The approved (or candidate) catalog version `image` names, to pin it by digest.

    Raises:
        JobFailure: the reference is malformed or names no usable catalog version.
    """
    try:
        res = base_image_resolve(image)
    except ReferenceError as exc:
        raise JobFailure(_("Line %(line)s: %(error)s", line=line, error=str(exc))) from exc
    version = res.version
    if version is None or version.state not in VersionState.usable_as_base():
        why = "; ".join(res.reasons) or _("no approved or candidate version")
        raise JobFailure(
            _(
                "Line %(line)s: %(image)s is not an approved (or candidate) image version in "
                "the portal's registry: %(reasons)s",
                line=line,
                image=shown,
                reasons=why,
            )
        )
    return version


def existing_version(target: BuildTarget, recipe: ResolvedRecipe) -> ImageVersion | None:
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
