"""The first run's demo bootstraps, as everyone sees them: a banner on every page while the
demo images build, and a console line in `make run` as each one is ready."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache

from portal.models import Job

from .demo import DEMO_BUILDS
from .models import BaseImage, ImageVersion
from .services.builds import build_idempotency_key

CACHE_KEY = "images:demo-progress"
CACHE_SECONDS = 3


@dataclass(frozen=True)
class DemoImageProgress:
    """One demo image: `ready` (a version of its tag exists), or its build job's state."""

    reference: str
    state: str
    progress: int = 0
    step: str = ""
    pull_ref: str = ""
    job_id: int | None = None

    @property
    def ready(self) -> bool:
        """Whether the image has a version of its tag."""
        return self.state == "ready"


def demo_progress_compute() -> list[DemoImageProgress]:
    """Each demo image's progress (three queries); empty when no demo build ever started."""
    names = [build.image for build in DEMO_BUILDS]
    images = {i.name: i.pk for i in BaseImage.objects.filter(name__in=names).only("pk", "name")}
    if not images:
        return []
    versions: dict[tuple[int, str], str] = {}
    for version in ImageVersion.objects.filter(base_image_id__in=images.values()).select_related(
        "registry", "base_image"
    ):
        for tag in {version.tag, *version.tags}:
            versions.setdefault((version.base_image_id, tag), version.pull_ref)
    keys = {build_idempotency_key(b.image, b.tag): b for b in DEMO_BUILDS}
    jobs: dict[str, Job] = {}
    for job in (
        Job.objects.filter(idempotency_key__in=keys)
        .only("pk", "state", "progress", "step", "idempotency_key")
        .order_by("pk")
    ):
        jobs[job.idempotency_key or ""] = job  # the latest attempt wins
    if not jobs:
        return []  # not a `make run` demo: nothing was ever bootstrapped
    result = []
    for key, build in keys.items():
        reference = f"{build.image}:{build.tag}"
        pull_ref = versions.get((images.get(build.image, -1), build.tag))
        latest = jobs.get(key)
        if pull_ref:
            result.append(DemoImageProgress(reference, "ready", 100, pull_ref=pull_ref))
        elif latest is not None:
            result.append(
                DemoImageProgress(
                    reference, latest.state, latest.progress, latest.step, job_id=latest.pk
                )
            )
        else:
            result.append(DemoImageProgress(reference, "waiting"))
    return result


def demo_progress() -> list[DemoImageProgress]:
    """The progress for the banner, or empty once every demo image is ready (cached 3 s)."""
    cached: list[DemoImageProgress] | None = cache.get(CACHE_KEY)
    if cached is None:
        cached = demo_progress_compute()
        if all(item.ready for item in cached):
            cached = []
        cache.set(CACHE_KEY, cached, CACHE_SECONDS)
    return cached
