"""What the build job does to its request: building → scanning (or published), or failed.

Decision on `scanning`: there is no scan job yet. A successful build records the candidate
ImageVersion and moves the request to `scanning`, where it waits until a reviewer publishes
the candidate (`image_version_publish`), or the auto-publish rule (`PORTAL_AUTO_PUBLISH`) does
so at once. The scan issue plugs its job and gate in between.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from portal.actors import Actor
from portal.jobs import IllegalTransition
from portal.models import Job

from ..builder import RUNTIME_ENV
from ..choices import ImageKind, RequestEventKind, RequestState, VersionState
from ..models import ImageRequest, ImageVersion
from ._transitions import record_audit, record_event, transition

BUILD_JOB_KIND = "images.build"


def build_idempotency_key(name: str, tag: str) -> str:
    """The job idempotency key that keeps two builds of one image tag from running at once."""
    return f"{BUILD_JOB_KIND}:{name}:{tag}"


def image_request_mark_building(*, request_id: int, actor: Actor) -> ImageRequest:
    """approved → building (building → building when the job is retried after a lost worker)."""
    request = ImageRequest.objects.get(pk=request_id)
    before = request.state
    with transaction.atomic():
        request = transition(
            request,
            from_states={RequestState.APPROVED, RequestState.BUILDING},
            to=RequestState.BUILDING,
        )
        if before != RequestState.BUILDING:
            record_event(request, RequestEventKind.BUILD_STARTED, actor)
            record_audit(request, actor, "building", before)
    return request


def image_request_mark_built(
    *, request_id: int, version: ImageVersion, actor: Actor, note: str = ""
) -> ImageRequest:
    """building → scanning with the recorded candidate (→ published if it is already approved)."""
    request = ImageRequest.objects.get(pk=request_id)
    with transaction.atomic():
        request = transition(
            request,
            from_states={RequestState.BUILDING},
            to=RequestState.SCANNING,
            image_version=version,
        )
        record_event(
            request, RequestEventKind.BUILT, actor, note or f"{version.tag} {version.digest}"
        )
        record_audit(request, actor, "built", RequestState.BUILDING, digest=version.digest)
        if version.state == VersionState.APPROVED:
            request = transition(
                request, from_states={RequestState.SCANNING}, to=RequestState.PUBLISHED
            )
            record_event(
                request, RequestEventKind.PUBLISHED, actor, "The version was already approved."
            )
            record_audit(request, actor, "publish", RequestState.SCANNING, digest=version.digest)
    return request


def image_request_mark_failed(*, request_id: int, actor: Actor, error: str) -> ImageRequest | None:
    """approved|building → failed with the job's error; None when it was elsewhere already."""
    request = ImageRequest.objects.get(pk=request_id)
    before = request.state
    with transaction.atomic():
        try:
            request = transition(
                request,
                from_states={RequestState.APPROVED, RequestState.BUILDING},
                to=RequestState.FAILED,
                error=error[:10000],
            )
        except IllegalTransition:
            return None
        record_event(request, RequestEventKind.FAILED, actor, error[:2000])
        record_audit(request, actor, "fail", before, error=error[:500])
    return request


def image_request_build_failed(job: Job) -> None:
    """`on_failure` of the build job kind: a failed or cancelled build fails its request.

    However the job ended (the build broke, the reaper gave up on a lost worker, a user
    cancelled it), the request moves on with the job's error instead of staying `building`.
    """
    requests = ImageRequest.objects.filter(
        build_job=job, state__in=[RequestState.APPROVED, RequestState.BUILDING]
    )
    for request in requests:
        image_request_mark_failed(
            request_id=request.pk,
            actor=Actor.system_actor(f"job:{job.pk}"),
            error=job.error or f"The build job #{job.pk} was {job.state}.",
        )


def auto_publish_enabled() -> bool:
    """Whether the auto-publish rule publishes candidates right after their build."""
    return bool(getattr(settings, "PORTAL_AUTO_PUBLISH", False))


def runtime_env_for(kind: str) -> dict[str, str]:
    """Default environment of a bootstrapped image: the standard's for runtime images."""
    return dict(RUNTIME_ENV) if kind == ImageKind.RUNTIME else {}
