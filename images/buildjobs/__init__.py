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

from .build import build_image, is_candidate_tag
from .common import TRANSIENT, JobLog, builder_config, push_and_read_back, retry_registry
from .recipe import BuildTarget, ResolvedRecipe, build_target, resolve_recipe

__all__ = [
    "TRANSIENT",
    "BuildTarget",
    "JobLog",
    "ResolvedRecipe",
    "build_image",
    "is_candidate_tag",
    "build_target",
    "builder_config",
    "resolve_recipe",
    "push_and_read_back",
    "retry_registry",
]
