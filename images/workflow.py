"""The request → review → build → publish workflow of base images (services and selectors).

Every transition is a guarded conditional UPDATE (`filter(pk=, state__in=old).update(...)`;
zero rows → `IllegalTransition`, a 409), writes a timeline event and an audit row in the same
transaction. The allowed transitions are listed in the `ImageRequest` docstring.

Decision on `scanning`: there is no scan job yet. A successful build records the candidate
ImageVersion and moves the request to `scanning`, where it waits until a reviewer publishes
the candidate (`image_version_publish`), or the auto-publish rule (`PORTAL_AUTO_PUBLISH`) does
so at once. The scan issue plugs its job and gate in between.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role, role_at_least
from portal.jobs import IllegalTransition, job_create
from portal.models import Job, Team

from .builder import RUNTIME_ENV
from .choices import (
    ImageKind,
    ImageStatus,
    OsFamily,
    RecipeKind,
    RequestEventKind,
    RequestState,
    VersionState,
)
from .models import BaseImage, ImageRequest, ImageRequestEvent, ImageVersion
from .policy import DockerfileInputError
from .recipes import (
    RecipeError,
    check_recipe_text,
    dockerfile_from_lines,
    parse_bootstrap_recipe,
)
from .references import ReferenceError
from .selectors import base_image_resolve
from .services import derive_status, dockerfile_check

BUILD_JOB_KIND = "images.build"
EDITABLE_STATES = frozenset({RequestState.DRAFT, RequestState.CHANGES_REQUESTED})
BOOTSTRAP_FAMILIES = frozenset({OsFamily.DEBIAN, OsFamily.UBUNTU})
USABLE_BASE_STATES = frozenset({VersionState.APPROVED, VersionState.CANDIDATE})


def build_idempotency_key(name: str, tag: str) -> str:
    """The job idempotency key that keeps two builds of one image tag from running at once."""
    return f"{BUILD_JOB_KIND}:{name}:{tag}"


# --- selectors ----------------------------------------------------------------------------------


def image_request_list_for_actor(actor: Actor) -> QuerySet[ImageRequest]:
    """Requests the actor may see: all for platform admins, else its own and its teams'."""
    requests = ImageRequest.objects.select_related(
        "team", "requested_by", "requested_by_token", "build_job", "image_version", "base_image"
    ).defer("build_job__log")
    if actor.is_platform_admin:
        return requests
    mine = Q(team_id__in=actor.team_ids)
    if actor.user is not None:
        mine |= Q(requested_by=actor.user)
    if actor.token is not None:
        mine |= Q(requested_by_token=actor.token)
    return requests.filter(mine)


def image_request_review_queue() -> QuerySet[ImageRequest]:
    """Submitted requests waiting for a reviewer, oldest first."""
    return (
        ImageRequest.objects.select_related("team", "requested_by", "requested_by_token")
        .filter(state=RequestState.SUBMITTED)
        .order_by("submitted_at", "id")
    )


def image_request_allowed_actions(request: ImageRequest, actor: Actor) -> list[str]:
    """The transitions `actor` may make on `request` now (for the UI's buttons)."""
    actions: list[str] = []
    if request.state in EDITABLE_STATES and _may_edit(request, actor):
        actions += ["edit", "submit"]
    if request.state == RequestState.SUBMITTED and actor.is_platform_admin:
        if not _is_requester(request, actor):
            actions.append("approve")
        actions += ["request-changes", "reject"]
    if (
        request.state == RequestState.SCANNING
        and actor.is_platform_admin
        and not _is_requester(request, actor)
        and request.image_version is not None
        and request.image_version.state == VersionState.CANDIDATE
    ):
        actions.append("publish")
    if _may_edit(request, actor) or actor.is_platform_admin:
        actions.append("comment")
    return actions


# --- helpers ------------------------------------------------------------------------------------


def _is_requester(request: ImageRequest, actor: Actor) -> bool:
    if actor.user is not None and request.requested_by_id == actor.user.pk:
        return True
    return actor.token is not None and request.requested_by_token_id == actor.token.pk


def _may_edit(request: ImageRequest, actor: Actor) -> bool:
    """The requester, or a developer (or more) of the request's team."""
    if _is_requester(request, actor):
        return True
    role = actor.role_in(request.team) if request.team_id else None
    return role is not None and role_at_least(role, Role.DEVELOPER)


def _require_editor(request: ImageRequest, actor: Actor, what: str) -> None:
    if not _may_edit(request, actor):
        raise PermissionDenied(
            f"Only the requester or a developer of team {request.team or '?'} may {what} "
            "this request."
        )


def _require_reviewer(request: ImageRequest, actor: Actor, what: str) -> None:
    if not actor.is_platform_admin:
        raise PermissionDenied(f"Only a platform admin may {what} image requests.")
    if what in ("approve", "publish") and _is_requester(request, actor):
        raise PermissionDenied(
            f"You requested {request.reference}; another reviewer must {what} it."
        )


def _event(request: ImageRequest, kind: str, actor: Actor, text: str = "") -> ImageRequestEvent:
    return ImageRequestEvent.objects.create(
        request=request,
        kind=kind,
        actor_user=actor.user if actor.user is not None and actor.user.pk else None,
        actor_repr=str(actor)[:200],
        text=text,
    )


def _transition(
    request: ImageRequest, *, from_states: set[str], to: str, **fields: Any
) -> ImageRequest:
    """Guarded state change; raises IllegalTransition (409) when the request is elsewhere."""
    try:
        with transaction.atomic():  # a savepoint: a constraint violation must not poison the caller
            updated = ImageRequest.objects.filter(pk=request.pk, state__in=from_states).update(
                state=to, updated_at=timezone.now(), **fields
            )
    except IntegrityError as exc:
        raise Conflict(
            f"Another request for {request.reference} is already open; finish or withdraw it "
            "first.",
            code="duplicate",
        ) from exc
    current = ImageRequest.objects.get(pk=request.pk)
    if not updated:
        allowed = ", ".join(sorted(from_states))
        raise IllegalTransition(
            f"Request #{request.pk} is {current.state}; it cannot become {to} "
            f"(allowed from: {allowed})."
        )
    return current


def _audit(request: ImageRequest, actor: Actor, verb: str, before: str, **after: Any) -> None:
    audit_record(
        actor=actor,
        action=f"image_request.{verb}",
        obj=request,
        before={"state": before},
        after={"state": request.state, **after},
    )


def _actor_team(actor: Actor) -> Team:
    """The team a new request belongs to: the token's, else the user's (developer or more)."""
    if actor.token is not None:
        return actor.token.team
    if actor.user is None:
        return Team.objects.filter(is_platform=True).order_by("pk").first()  # system requests
    memberships = sorted(
        (m for m in actor.user.memberships.all() if role_at_least(m.role, Role.DEVELOPER)),
        key=lambda m: m.team_id,
    )
    if not memberships:
        raise PermissionDenied("You need the developer role in a team to request base images.")
    return memberships[0].team


def _open_duplicate(name: str, tag: str, exclude_pk: int | None = None) -> ImageRequest | None:
    found = ImageRequest.objects.filter(name=name, tag=tag, state__in=RequestState.open())
    if exclude_pk is not None:
        found = found.exclude(pk=exclude_pk)
    return found.first()


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
                "recipe_kind": f"Use one of {', '.join(RecipeKind.values)}, "
                f"not {request.recipe_kind!r}."
            }
        )
    if not (request.justification or "").strip():
        raise ValidationError({"justification": "Say why the image is needed."})
    request.full_clean(exclude=["base_image", "team", "requested_by", "requested_by_token"])
    _validate_recipe(request.recipe_kind, request.recipe)
    existing = BaseImage.objects.filter(name=request.name).first()
    if existing is not None:
        if existing.kind != request.kind:
            raise ValidationError(
                {"kind": f"{existing.name} is a {existing.kind} image in the catalog."}
            )
        if existing.status == ImageStatus.BLOCKED:
            raise ValidationError({"name": f"{existing.name} is blocked; choose another image."})
    request.base_image = existing


# --- policy report --------------------------------------------------------------------------------


def _finding(rule: str, severity: str, line: int, message: str) -> dict[str, Any]:
    return {"rule": rule, "severity": severity, "line": line, "message": message}


def _verdict(findings: list[dict[str, Any]]) -> str:
    severities = {f["severity"] for f in findings}
    return "fail" if "fail" in severities else "warn" if "warn" in severities else "pass"


def _dockerfile_report(request: ImageRequest) -> dict[str, Any]:
    purpose = "runtime-recipe" if request.kind == ImageKind.RUNTIME else "build-recipe"
    try:
        report = dockerfile_check(text=request.recipe, purpose=purpose).to_dict()
    except DockerfileInputError as exc:
        return {"verdict": "fail", "findings": [_finding("BIP000", "fail", 1, exc.message)]}
    findings = list(report.get("findings", []))
    bases = []
    for line in dockerfile_from_lines(request.recipe):
        if not line.external:
            continue
        entry: dict[str, Any] = {"line": line.line, "image": line.image, "pinned_ref": None}
        try:
            res = base_image_resolve(line.image)
        except ReferenceError as exc:
            findings.append(_finding("BUILD001", "fail", line.line, str(exc)))
            bases.append(entry)
            continue
        version = res.version
        if version is None or version.state not in USABLE_BASE_STATES:
            why = "; ".join(res.reasons) or "no approved or candidate version"
            findings.append(
                _finding(
                    "BUILD001",
                    "fail",
                    line.line,
                    f"FROM {line.image} cannot be built: it must be an approved (or candidate) "
                    f"image version in the portal's registry ({why}).",
                )
            )
        else:
            entry.update(pinned_ref=version.pull_ref, state=version.state)
        bases.append(entry)
    report["findings"] = findings
    report["bases"] = bases
    report["verdict"] = _verdict(findings)
    return report


def _bootstrap_report(request: ImageRequest) -> dict[str, Any]:
    findings: list[dict[str, Any]] = []
    recipe = parse_bootstrap_recipe(request.recipe, default_env={})
    if request.os_family not in BOOTSTRAP_FAMILIES:
        findings.append(
            _finding(
                "BUILD002",
                "fail",
                1,
                f"Bootstraps use mmdebstrap, which makes Debian or Ubuntu systems only; "
                f"{request.get_os_family_display()} needs a Dockerfile recipe.",
            )
        )
    derived = derive_status(
        os_family=request.os_family,
        os_version=request.os_version,
        status=ImageStatus.APPROVED,
        today=timezone.localdate(),
    )
    if derived.status != ImageStatus.APPROVED:
        findings.append(_finding("BUILD003", "fail", 1, derived.note or derived.status))
    if recipe.spec.variant not in ("minbase", "buildd", "apt", "essential"):
        findings.append(
            _finding("BUILD004", "warn", 1, f"Variant {recipe.spec.variant} is unusual.")
        )
    return {
        "verdict": _verdict(findings),
        "findings": findings,
        "stages": [],
        "bootstrap": {
            "suite": recipe.spec.suite,
            "variant": recipe.spec.variant,
            "packages": list(recipe.spec.packages),
        },
    }


def image_request_policy_report(request: ImageRequest) -> dict[str, Any]:
    """The policy report of a request's recipe (`{"verdict", "findings", ...}`)."""
    if request.recipe_kind == RecipeKind.BOOTSTRAP:
        return _bootstrap_report(request)
    return _dockerfile_report(request)


# --- services -------------------------------------------------------------------------------------


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
        requested_by=actor.user if actor.user is not None else None,
        requested_by_token=actor.token,
    )
    _clean_fields(request)
    duplicate = _open_duplicate(request.name, request.tag)
    if duplicate is not None:
        raise Conflict(
            f"Request #{duplicate.pk} for {request.reference} is already {duplicate.state}.",
            code="duplicate",
        )
    with transaction.atomic():
        request.save()
        _event(request, RequestEventKind.CREATED, actor)
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
    _require_editor(request, actor, "edit")
    allowed = {"recipe", "recipe_kind", "justification", "os_version", "toolchain", "tag", "kind"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError({"non_field_errors": f"Cannot change {', '.join(unknown)}."})
    if request.state not in EDITABLE_STATES:
        raise IllegalTransition(
            f"Request #{request.pk} is {request.state}; only drafts and requests sent back "
            "for changes can be edited."
        )
    for field, value in changes.items():
        setattr(request, field, value)
    _clean_fields(request)
    with transaction.atomic():
        updated = ImageRequest.objects.filter(pk=request.pk, state__in=EDITABLE_STATES).update(
            **{f: getattr(request, f) for f in changes}, updated_at=timezone.now()
        )
        if not updated:
            raise IllegalTransition(f"Request #{request.pk} changed state meanwhile.")
        _event(request, RequestEventKind.UPDATED, actor, ", ".join(sorted(changes)))
        audit_record(
            actor=actor,
            action="image_request.update",
            obj=request,
            after={"fields": sorted(changes)},
        )
    return ImageRequest.objects.get(pk=request.pk)


def image_request_submit(*, request: ImageRequest, actor: Actor) -> ImageRequest:
    """draft|changes_requested → submitted, with the policy report computed now."""
    _require_editor(request, actor, "submit")
    report = image_request_policy_report(request)
    before = request.state
    with transaction.atomic():
        request = _transition(
            request,
            from_states=set(EDITABLE_STATES),
            to=RequestState.SUBMITTED,
            policy_report=report,
            policy_verdict=report["verdict"],
            submitted_at=timezone.now(),
        )
        _event(request, RequestEventKind.SUBMITTED, actor, f"Policy verdict: {report['verdict']}")
        _audit(request, actor, "submit", before, verdict=report["verdict"])
    return request


def image_request_comment(*, request: ImageRequest, actor: Actor, text: str) -> ImageRequestEvent:
    """Add a comment to the timeline (the requester's team or a reviewer)."""
    if not (_may_edit(request, actor) or actor.is_platform_admin):
        raise PermissionDenied("Only the requester's team or a reviewer may comment.")
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "The comment is empty."})
    if len(text) > 10_000:
        raise ValidationError({"text": "A comment has at most 10000 characters."})
    with transaction.atomic():
        event = _event(request, RequestEventKind.COMMENT, actor, text)
        audit_record(
            actor=actor, action="image_request.comment", obj=request, after={"text": text[:500]}
        )
    return event


def image_request_request_changes(
    *, request: ImageRequest, actor: Actor, comment: str
) -> ImageRequest:
    """submitted → changes_requested, with the reviewer's comment."""
    _require_reviewer(request, actor, "review")
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "Say what has to change."})
    before = request.state
    with transaction.atomic():
        request = _transition(
            request, from_states={RequestState.SUBMITTED}, to=RequestState.CHANGES_REQUESTED
        )
        _event(request, RequestEventKind.CHANGES_REQUESTED, actor, comment)
        _audit(request, actor, "request_changes", before, comment=comment[:500])
    return request


def image_request_reject(*, request: ImageRequest, actor: Actor, reason: str) -> ImageRequest:
    """submitted → rejected (final), with the reason."""
    _require_reviewer(request, actor, "reject")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Give the reason for the rejection."})
    before = request.state
    with transaction.atomic():
        request = _transition(
            request,
            from_states={RequestState.SUBMITTED},
            to=RequestState.REJECTED,
            decided_at=timezone.now(),
            reviewed_by=actor.user,
            reviewed_by_repr=str(actor)[:200],
        )
        _event(request, RequestEventKind.REJECTED, actor, reason)
        _audit(request, actor, "reject", before, reason=reason[:500])
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
    _require_reviewer(request, actor, "approve")
    if request.state == RequestState.SUBMITTED and request.policy_verdict == "fail":
        raise Conflict(
            "The policy report of this request fails; request changes instead of approving.",
            code="policy_failed",
        )
    before = request.state
    with transaction.atomic():
        request = _transition(
            request,
            from_states={RequestState.SUBMITTED},
            to=RequestState.APPROVED,
            decided_at=timezone.now(),
            reviewed_by=actor.user,
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
                f"A build of {request.reference} is already running (job #{job.pk}); "
                "approve again when it has finished.",
                code="build_running",
            )
        ImageRequest.objects.filter(pk=request.pk).update(build_job=job)
        request.build_job = job
        _event(request, RequestEventKind.APPROVED, actor, comment.strip() or f"Build job #{job.pk}")
        _audit(request, actor, "approve", before, job=job.pk)
    return request, job


# --- called by the build job ----------------------------------------------------------------------


def image_request_mark_building(*, request_id: int, actor: Actor) -> ImageRequest:
    """approved → building (building → building when the job is retried after a lost worker)."""
    request = ImageRequest.objects.get(pk=request_id)
    before = request.state
    with transaction.atomic():
        request = _transition(
            request,
            from_states={RequestState.APPROVED, RequestState.BUILDING},
            to=RequestState.BUILDING,
        )
        if before != RequestState.BUILDING:
            _event(request, RequestEventKind.BUILD_STARTED, actor)
            _audit(request, actor, "building", before)
    return request


def image_request_mark_built(
    *, request_id: int, version: ImageVersion, actor: Actor, note: str = ""
) -> ImageRequest:
    """building → scanning with the recorded candidate (→ published if it is already approved)."""
    request = ImageRequest.objects.get(pk=request_id)
    with transaction.atomic():
        request = _transition(
            request,
            from_states={RequestState.BUILDING},
            to=RequestState.SCANNING,
            image_version=version,
        )
        _event(request, RequestEventKind.BUILT, actor, note or f"{version.tag} {version.digest}")
        _audit(request, actor, "built", RequestState.BUILDING, digest=version.digest)
        if version.state == VersionState.APPROVED:
            request = _transition(
                request, from_states={RequestState.SCANNING}, to=RequestState.PUBLISHED
            )
            _event(request, RequestEventKind.PUBLISHED, actor, "The version was already approved.")
            _audit(request, actor, "publish", RequestState.SCANNING, digest=version.digest)
    return request


def image_request_mark_failed(*, request_id: int, actor: Actor, error: str) -> ImageRequest | None:
    """approved|building → failed with the job's error; None when it was elsewhere already."""
    request = ImageRequest.objects.get(pk=request_id)
    before = request.state
    with transaction.atomic():
        try:
            request = _transition(
                request,
                from_states={RequestState.APPROVED, RequestState.BUILDING},
                to=RequestState.FAILED,
                error=error[:10000],
            )
        except IllegalTransition:
            return None
        _event(request, RequestEventKind.FAILED, actor, error[:2000])
        _audit(request, actor, "fail", before, error=error[:500])
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


# --- publish --------------------------------------------------------------------------------------


def image_version_publish(*, version: ImageVersion, actor: Actor) -> ImageVersion:
    """candidate → approved; the image's previous approved versions become superseded by it.

    Requests waiting in `scanning` for this version become `published`.

    Raises:
        PermissionDenied: not a platform admin, or the requester of the build (403).
        IllegalTransition: the version is not a candidate (409).
    """
    waiting = list(ImageRequest.objects.filter(image_version=version, state=RequestState.SCANNING))
    if not actor.is_system:
        if not actor.is_platform_admin:
            raise PermissionDenied("Only a platform admin may publish image versions.")
        for request in waiting:
            _require_reviewer(request, actor, "publish")
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
            request = _transition(
                request, from_states={RequestState.SCANNING}, to=RequestState.PUBLISHED
            )
            _event(request, RequestEventKind.PUBLISHED, actor, current.digest)
            _audit(request, actor, "publish", RequestState.SCANNING, digest=current.digest)
    return current


def auto_publish_enabled() -> bool:
    """Whether the auto-publish rule publishes candidates right after their build."""
    return bool(getattr(settings, "PORTAL_AUTO_PUBLISH", False))


def runtime_env_for(kind: str) -> dict[str, str]:
    """Default environment of a bootstrapped image: the standard's for runtime images."""
    return dict(RUNTIME_ENV) if kind == ImageKind.RUNTIME else {}
