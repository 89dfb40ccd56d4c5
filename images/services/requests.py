"""Image request writes: create, edit, submit, comment and review (approve starts the build).

See `._transitions` for how a request moves; the allowed transitions are listed in the
`ImageRequest` docstring.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role, role_at_least
from portal.jobs import IllegalTransition, job_create
from portal.models import Job, Team
from portal.templatetags.portal_i18n import status_label

from ..choices import ImageStatus, RecipeKind, RequestEventKind, RequestState
from ..models import BaseImage, ImageRequest, ImageRequestEvent
from ..recipes import RecipeError, check_recipe_text, dockerfile_from_lines, parse_bootstrap_recipe
from ..selectors import image_request_may_edit, image_version_with_tag
from ._transitions import record_audit, record_event, require_editor, require_reviewer, transition
from .builds import BUILD_JOB_KIND, build_idempotency_key
from .reports import image_request_policy_report


def _actor_team(actor: Actor) -> Team | None:
    """The team a new request belongs to: the token's, else the user's (developer or more).

    A system request belongs to the platform team (None when there is none yet).
    """
    if actor.token is not None:
        return actor.token.team
    if actor.user is None:
        return Team.objects.filter(is_platform=True).order_by("pk").first()  # system requests
    memberships = sorted(
        (m for m in actor.user.memberships.all() if role_at_least(m.role, Role.DEVELOPER)),
        key=lambda m: m.team_id,
    )
    if not memberships:
        raise PermissionDenied(
            gettext_lazy("You need the developer role in a team to request base images.")
        )
    team: Team = memberships[0].team
    return team


def _open_duplicate(name: str, tag: str, exclude_pk: int | None = None) -> ImageRequest | None:
    found = ImageRequest.objects.filter(name=name, tag=tag, state__in=RequestState.open())
    if exclude_pk is not None:
        found = found.exclude(pk=exclude_pk)
    return found.first()


RESERVED_PREFIXES = ("binaries/",)
"""Repositories the portal itself pushes to (binary artifacts): never a base image name."""


def _check_target(request: ImageRequest, existing: BaseImage | None) -> None:
    """Only the owner team may request versions of an image, and a name:tag with a version
    is never built again (versions are immutable).

    Raises:
        ValidationError: the name is under a reserved prefix (400).
        PermissionDenied: another team owns the image (403).
        Conflict: the tag already has a version (409, code `tag_exists`).
    """
    if request.name.startswith(RESERVED_PREFIXES):
        raise ValidationError(
            {
                "name": gettext(
                    "%(request)s is reserved for the portal's binary artifacts; choose another "
                    "image name."
                )
                % {"request": request.name}
            }
        )
    if existing is not None and existing.owner_team_id != request.team_id:
        raise PermissionDenied(
            gettext(
                "%(existing)s belongs to team %(owner_team)s; only a developer of that team may "
                "request versions of it. Ask them, or request an image with a new name."
            )
            % {"existing": existing.name, "owner_team": existing.owner_team}
        )
    taken = image_version_with_tag(name=request.name, tag=request.tag)
    if taken is not None:
        raise Conflict(
            gettext(
                "%(reference)s already has version %(digest)s (%(state)s); versions are immutable "
                "and a tag is never rebuilt: request a new tag instead."
            )
            % {
                "reference": request.reference,
                "digest": taken.digest,
                "state": status_label(taken.state),
            },
            code="tag_exists",
        )


def _validate_recipe(recipe_kind: str, recipe: str) -> None:
    try:
        check_recipe_text(recipe)
        if recipe_kind == RecipeKind.BOOTSTRAP:
            parse_bootstrap_recipe(recipe, default_env={})
        else:
            dockerfile_from_lines(recipe)
    except RecipeError as exc:
        raise ValidationError({"recipe": str(exc)}) from exc


def _clean_fields(request: ImageRequest) -> None:
    if request.recipe_kind not in RecipeKind.values:
        raise ValidationError(
            {
                "recipe_kind": gettext("Use one of %(values)s, not %(recipe_kind)r.")
                % {"values": ", ".join(RecipeKind.values), "recipe_kind": request.recipe_kind}
            }
        )
    if not (request.justification or "").strip():
        raise ValidationError({"justification": gettext_lazy("Say why the image is needed.")})
    request.full_clean(exclude=["base_image", "team", "requested_by", "requested_by_token"])
    _validate_recipe(request.recipe_kind, request.recipe)
    existing = BaseImage.objects.filter(name=request.name).first()
    if existing is not None:
        if existing.kind != request.kind:
            raise ValidationError(
                {
                    "kind": gettext("%(existing)s is a %(kind)s image in the catalog.")
                    % {"existing": existing.name, "kind": status_label(existing.kind)}
                }
            )
        if existing.status == ImageStatus.BLOCKED:
            raise ValidationError(
                {
                    "name": gettext("%(existing_name)s is blocked; choose another image.")
                    % {"existing_name": existing.name}
                }
            )
    _check_target(request, existing)
    request.base_image = existing


def image_request_create(
    *,
    actor: Actor,
    name: str,
    tag: str,
    kind: str,
    os_family: str,
    recipe_kind: str,
    recipe: str,
    justification: str,
    os_version: str = "",
    toolchain: str = "",
    submit: bool = False,
) -> ImageRequest:
    """Create a draft request (and submit it when `submit`).

    Raises:
        ValidationError: a bad field or recipe (400).
        PermissionDenied: the actor is no developer of any team (403).
        Conflict: another request for name:tag is open (409).
    """
    team = _actor_team(actor)
    request = ImageRequest(
        name=(name or "").strip(),
        tag=(tag or "").strip(),
        kind=kind,
        os_family=os_family,
        os_version=(os_version or "").strip(),
        toolchain=(toolchain or "").strip(),
        recipe_kind=recipe_kind,
        recipe=recipe or "",
        justification=justification or "",
        team=team,
        requested_by=actor.person,  # a token's request is its creator's (four eyes)
        requested_by_token=actor.token,
    )
    _clean_fields(request)
    duplicate = _open_duplicate(request.name, request.tag)
    if duplicate is not None:
        raise Conflict(
            gettext("Request #%(duplicate_id)s for %(reference)s is already %(state)s.")
            % {
                "duplicate_id": duplicate.pk,
                "reference": request.reference,
                "state": status_label(duplicate.state),
            },
            code="duplicate",
        )
    with transaction.atomic():
        request.save()
        record_event(request, RequestEventKind.CREATED, actor)
        audit_record(
            actor=actor,
            action="image_request.create",
            obj=request,
            after={"name": request.name, "tag": request.tag, "state": request.state},
        )
        if submit:
            request = image_request_submit(request=request, actor=actor)
    return request


def image_request_update(*, request: ImageRequest, actor: Actor, **changes: Any) -> ImageRequest:
    """Edit a draft (or a request sent back for changes): recipe, justification, OS…"""
    require_editor(request, actor, "edit")
    allowed = {"recipe", "recipe_kind", "justification", "os_version", "toolchain", "tag", "kind"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError(
            {
                "non_field_errors": gettext("Cannot change %(unknown)s.")
                % {"unknown": ", ".join(unknown)}
            }
        )
    if request.state not in RequestState.editable():
        raise IllegalTransition(
            gettext(
                "Request #%(request_id)s is %(state)s; only drafts and requests sent back for "
                "changes can be edited."
            )
            % {"request_id": request.pk, "state": status_label(request.state)}
        )
    for field, value in changes.items():
        setattr(request, field, value)
    _clean_fields(request)
    with transaction.atomic():
        updated = ImageRequest.objects.filter(
            pk=request.pk, state__in=RequestState.editable()
        ).update(**{f: getattr(request, f) for f in changes}, updated_at=timezone.now())
        if not updated:
            raise IllegalTransition(
                gettext("Request #%(request_pk)s changed state meanwhile.")
                % {"request_pk": request.pk}
            )
        record_event(request, RequestEventKind.UPDATED, actor, ", ".join(sorted(changes)))
        audit_record(
            actor=actor,
            action="image_request.update",
            obj=request,
            after={"fields": sorted(changes)},
        )
    return ImageRequest.objects.get(pk=request.pk)


def image_request_submit(*, request: ImageRequest, actor: Actor) -> ImageRequest:
    """draft|changes_requested → submitted, with the policy report computed now.

    Raises:
        PermissionDenied: not an editor, or another team owns the image (403).
        Conflict: the tag already has a version, or another request for it is open (409).
    """
    require_editor(request, actor, "submit")
    _check_target(request, BaseImage.objects.filter(name=request.name).first())
    report = image_request_policy_report(request)
    before = request.state
    with transaction.atomic():
        request = transition(
            request,
            from_states=set(RequestState.editable()),
            to=RequestState.SUBMITTED,
            policy_report=report,
            policy_verdict=report["verdict"],
            submitted_at=timezone.now(),
        )
        record_event(
            request, RequestEventKind.SUBMITTED, actor, f"Policy verdict: {report['verdict']}"
        )
        record_audit(request, actor, "submit", before, verdict=report["verdict"])
    return request


def image_request_comment(*, request: ImageRequest, actor: Actor, text: str) -> ImageRequestEvent:
    """Add a comment to the timeline (the requester's team or a reviewer)."""
    if not (image_request_may_edit(request, actor) or actor.is_platform_admin):
        raise PermissionDenied(gettext_lazy("Only the requester's team or a reviewer may comment."))
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": gettext_lazy("The comment is empty.")})
    if len(text) > 10_000:
        raise ValidationError({"text": gettext_lazy("A comment has at most 10000 characters.")})
    with transaction.atomic():
        event = record_event(request, RequestEventKind.COMMENT, actor, text)
        audit_record(
            actor=actor, action="image_request.comment", obj=request, after={"text": text[:500]}
        )
    return event


def image_request_request_changes(
    *, request: ImageRequest, actor: Actor, comment: str
) -> ImageRequest:
    """submitted → changes_requested, with the reviewer's comment."""
    require_reviewer(request, actor, "review")
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": gettext_lazy("Say what has to change.")})
    before = request.state
    with transaction.atomic():
        request = transition(
            request, from_states={RequestState.SUBMITTED}, to=RequestState.CHANGES_REQUESTED
        )
        record_event(request, RequestEventKind.CHANGES_REQUESTED, actor, comment)
        record_audit(request, actor, "request_changes", before, comment=comment[:500])
    return request


def image_request_reject(*, request: ImageRequest, actor: Actor, reason: str) -> ImageRequest:
    """submitted → rejected (final), with the reason."""
    require_reviewer(request, actor, "reject")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": gettext_lazy("Give the reason for the rejection.")})
    before = request.state
    with transaction.atomic():
        request = transition(
            request,
            from_states={RequestState.SUBMITTED},
            to=RequestState.REJECTED,
            decided_at=timezone.now(),
            reviewed_by=actor.person,
            reviewed_by_repr=str(actor)[:200],
        )
        record_event(request, RequestEventKind.REJECTED, actor, reason)
        record_audit(request, actor, "reject", before, reason=reason[:500])
    return request


def image_request_approve(
    *, request: ImageRequest, actor: Actor, comment: str = ""
) -> tuple[ImageRequest, Job]:
    """submitted → approved and start the build job; return (request, job).

    Raises:
        PermissionDenied: not a platform admin, or the requester themself (403).
        IllegalTransition: the request is not submitted (409).
        Conflict: the policy report fails, or a build of the same tag is running (409).
    """
    require_reviewer(request, actor, "approve")
    if request.state == RequestState.SUBMITTED and request.policy_verdict == "fail":
        raise Conflict(
            gettext(
                "The policy report of this request fails; request changes instead of approving."
            ),
            code="policy_failed",
        )
    before = request.state
    with transaction.atomic():
        request = transition(
            request,
            from_states={RequestState.SUBMITTED},
            to=RequestState.APPROVED,
            decided_at=timezone.now(),
            reviewed_by=actor.person,
            reviewed_by_repr=str(actor)[:200],
            error="",
        )
        job, created = job_create(
            kind=BUILD_JOB_KIND,
            actor=actor,
            params={"request_id": request.pk},
            target=request,
            team=request.team,
            idempotency_key=build_idempotency_key(request.name, request.tag),
        )
        if not created:
            raise Conflict(
                gettext(
                    "A build of %(reference)s is already running (job #%(job_id)s); approve again "
                    "when it has finished."
                )
                % {"reference": request.reference, "job_id": job.pk},
                code="build_running",
            )
        ImageRequest.objects.filter(pk=request.pk).update(build_job=job)
        request.build_job = job
        record_event(
            request, RequestEventKind.APPROVED, actor, comment.strip() or f"Build job #{job.pk}"
        )
        record_audit(request, actor, "approve", before, job=job.pk)
    return request, job
