"""Publishing a candidate image version: it becomes approved and supersedes the previous ones."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from portal.actors import Actor
from portal.audit import audit_record
from portal.jobs import IllegalTransition

from ..choices import RequestEventKind, RequestState, VersionState
from ..models import ImageRequest, ImageVersion
from ._transitions import record_audit, record_event, require_reviewer, transition


def image_version_publish(*, version: ImageVersion, actor: Actor) -> ImageVersion:
    """candidate → approved; the image's previous approved versions become superseded by it.

    Requests waiting in `scanning` for this version become `published`.

    Raises:
        PermissionDenied: not a platform admin, a token with no person behind it, or the
            person who requested the build, by session or by token (403).
        IllegalTransition: the version is not a candidate (409).
    """
    waiting = list(ImageRequest.objects.filter(image_version=version, state=RequestState.SCANNING))
    if not actor.is_system:
        if not actor.is_platform_admin:
            raise PermissionDenied("Only a platform admin may publish image versions.")
        if actor.person is None:
            raise PermissionDenied(
                "This token has no person behind it, so it cannot publish; use a token a "
                "platform admin created."
            )
        for request in waiting:
            require_reviewer(request, actor, "publish")
    with transaction.atomic():
        updated = ImageVersion.objects.filter(pk=version.pk, state=VersionState.CANDIDATE).update(
            state=VersionState.APPROVED, updated_at=timezone.now()
        )
        current = ImageVersion.objects.select_related("base_image", "registry").get(pk=version.pk)
        if not updated:
            raise IllegalTransition(
                f"Version {current} is {current.state}; only a candidate can be published."
            )
        previous = list(
            ImageVersion.objects.filter(
                base_image_id=current.base_image_id, state=VersionState.APPROVED
            ).exclude(pk=current.pk)
        )
        ImageVersion.objects.filter(pk__in=[v.pk for v in previous]).update(
            state=VersionState.SUPERSEDED, superseded_by=current, updated_at=timezone.now()
        )
        for old in previous:
            audit_record(
                actor=actor,
                action="image_version.supersede",
                obj=old,
                before={"state": VersionState.APPROVED},
                after={"state": VersionState.SUPERSEDED, "superseded_by": current.digest},
            )
        audit_record(
            actor=actor,
            action="image_version.publish",
            obj=current,
            before={"state": VersionState.CANDIDATE},
            after={"state": VersionState.APPROVED, "superseded": [v.digest for v in previous]},
        )
        for request in waiting:
            request = transition(
                request, from_states={RequestState.SCANNING}, to=RequestState.PUBLISHED
            )
            record_event(request, RequestEventKind.PUBLISHED, actor, current.digest)
            record_audit(request, actor, "publish", RequestState.SCANNING, digest=current.digest)
    return current
