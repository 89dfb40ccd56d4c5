"""Publishing a candidate image version: it becomes approved and supersedes the previous ones.

Builds push candidates under a staging tag (`<tag>-candidate-<job id>`), never under the public
tag; publishing is what points the public `<name>:<tag>` at the approved digest in the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from rest_framework import exceptions, status

from portal.actors import Actor
from portal.audit import audit_record
from portal.events import EventType, event_emit
from portal.jobs import IllegalTransition
from portal.templatetags.portal_i18n import status_label

from ..choices import RequestEventKind, RequestState, VersionState
from ..models import ImageRequest, ImageVersion
from ..registry import RegistryError, RegistryNotFound, RegistryUnavailable
from ..signals import image_version_superseded
from ._transitions import record_audit, record_event, require_reviewer, transition
from .gate import image_version_require_gate

logger = logging.getLogger(__name__)


class PublishRegistryError(exceptions.APIException, RegistryError):
    """502/503: the registry did not take the public tag; the version stays a candidate.

    Also a `RegistryError`, so the build job's auto-publish reports it as a registry error.
    """

    status_code: int = status.HTTP_502_BAD_GATEWAY
    default_detail = "The registry did not take the public tag."
    default_code = "registry_error"


def _move_public_tag(version: ImageVersion) -> None:
    """Point `<name>:<tag>` at `version.digest` in its registry; nothing to do if it already is.

    The manifest is read by digest (the bytes the build pushed under its staging tag) and put
    under the public tag as is, so the tag's digest becomes exactly the version's.

    Raises:
        PublishRegistryError: the registry is unreachable or refused (503 / 502).
    """
    registry = version.registry
    repository = version.base_image.name
    try:
        with registry.client() as client:
            try:
                _, _, current = client.get_manifest(repository, version.tag)
            except RegistryNotFound:
                current = ""
            if current == version.digest:
                return
            data, media_type, _ = client.get_manifest(repository, version.digest)
            client.put_manifest(repository, version.tag, data, media_type)
    except RegistryError as exc:
        unavailable = isinstance(exc, RegistryUnavailable)
        error = PublishRegistryError(
            f"Publishing {version} needs {registry.host}/{repository}:{version.tag} to point at "
            f"{version.digest}, but the registry did not take it: {exc}. Nothing was published "
            "(the version is still a candidate); publish it again when the registry answers.",
            code="registry_unavailable" if unavailable else "registry_error",
        )
        if unavailable:
            error.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        raise error from exc


def _superseded_sender(old_id: int, new_id: int, actor: Actor) -> Callable[[], None]:
    """Send `image_version_superseded` for one superseded version (a receiver's error is
    logged by `send_robust`, never raised into the publish that already committed)."""

    def send() -> None:
        answers = image_version_superseded.send_robust(
            sender=ImageVersion, old_version_id=old_id, new_version_id=new_id, actor=actor
        )
        for receiver, answer in answers:
            if isinstance(answer, Exception):
                logger.error("%s failed on version %s: %r", receiver, old_id, answer)

    return send


def _version_data(version: ImageVersion) -> dict[str, object]:
    return {
        "id": version.pk,
        "image": version.base_image.name,
        "tag": version.tag,
        "digest": version.digest,
        "pull_ref": version.pull_ref,
        "state": version.state,
    }


def _announce_publish(current: ImageVersion, previous: list[ImageVersion]) -> None:
    """`image_version.published` and one `superseded` per older version: catalog events,
    public to every team (in the publish's transaction: a rolled-back publish says nothing)."""
    team = current.base_image.owner_team
    event_emit(
        type=EventType.IMAGE_VERSION_PUBLISHED,
        team=team,
        subject=f"image-versions/{current.pk}",
        data={**_version_data(current), "supersedes": [v.digest for v in previous]},
        public=True,
    )
    for old in previous:
        old.state = VersionState.SUPERSEDED
        event_emit(
            type=EventType.IMAGE_VERSION_SUPERSEDED,
            team=team,
            subject=f"image-versions/{old.pk}",
            data={**_version_data(old), "superseded_by": _version_data(current)},
            public=True,
        )


def image_version_announce_revoked(*, version: ImageVersion, reason: str) -> None:
    """`image_version.revoked` (public): for the revoke service to call inside its transaction,
    after the guarded state change, so that subscribers learn a digest is no longer admitted."""
    event_emit(
        type=EventType.IMAGE_VERSION_REVOKED,
        team=version.base_image.owner_team,
        subject=f"image-versions/{version.pk}",
        data={**_version_data(version), "reason": reason},
        public=True,
    )


def image_version_publish(*, version: ImageVersion, actor: Actor) -> ImageVersion:
    """candidate → approved; the image's previous approved versions become superseded by it.

    Requests waiting in `scanning` for this version become `published`, and the registry's
    public `<name>:<tag>` is pointed at the version's digest.

    Order: the guarded state change and every other row are written first, in one
    transaction that still holds the version's row lock; the registry tag moves last, just
    before the commit. A registry failure rolls the whole publish back (the version stays a
    candidate, the tag stays where it was) and says so. A commit that fails after the tag
    moved leaves the tag on the reviewed candidate, and publishing again finds the tag already
    there and only commits. The tag never points at an unreviewed image.

    Raises:
        PermissionDenied: not a platform admin, a token with no person behind it, or the
            person who requested the build, by session or by token (403).
        IllegalTransition: the version is not a candidate (409).
        GateBlocked: the publish gate, recomputed now, blocks the version (409, code
            `gate_blocked`, the detail lists the blocking findings and how to waive them).
        PublishRegistryError: the registry did not take the public tag (502/503).
    """
    waiting = list(ImageRequest.objects.filter(image_version=version, state=RequestState.SCANNING))
    if not actor.is_system:
        if not actor.is_platform_admin:
            raise PermissionDenied(
                gettext_lazy("Only a platform admin may publish image versions.")
            )
        if actor.person is None:
            raise PermissionDenied(
                gettext(
                    "This token has no person behind it, so it cannot publish; use a token a "
                    "platform admin created."
                )
            )
        for request in waiting:
            require_reviewer(request, actor, "publish")
    if version.state == VersionState.CANDIDATE:  # anything else is the 409 below
        image_version_require_gate(version)
    with transaction.atomic():
        updated = ImageVersion.objects.filter(pk=version.pk, state=VersionState.CANDIDATE).update(
            state=VersionState.APPROVED, updated_at=timezone.now()
        )
        current = ImageVersion.objects.select_related("base_image__owner_team", "registry").get(
            pk=version.pk
        )
        if not updated:
            raise IllegalTransition(
                gettext("Version %(current)s is %(state)s; only a candidate can be published.")
                % {"current": current, "state": status_label(current.state)}
            )
        previous = list(
            ImageVersion.objects.filter(
                base_image_id=current.base_image_id, state=VersionState.APPROVED
            )
            .exclude(pk=current.pk)
            .select_related("base_image", "registry")
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
        _announce_publish(current, previous)
        for request in waiting:
            request = transition(
                request, from_states={RequestState.SCANNING}, to=RequestState.PUBLISHED
            )
            record_event(request, RequestEventKind.PUBLISHED, actor, current.digest)
            record_audit(request, actor, "publish", RequestState.SCANNING, digest=current.digest)
        _move_public_tag(current)  # last: a registry failure rolls all of the above back
        for old in previous:  # after the commit: a higher layer plans the rebase (deployments)
            transaction.on_commit(_superseded_sender(old.pk, current.pk, actor))
    return current
