"""Reads of the images app: the catalog, reference resolution, and image requests.

The request reads include who may do what on a request (`image_request_is_requester`,
`image_request_may_edit`): the services' guards and the UI's buttons ask the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Case,
    F,
    Func,
    IntegerField,
    JSONField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils.translation import gettext

from portal.actors import Actor
from portal.choices import Role, role_at_least
from portal.querysets import built_once
from portal.templatetags.portal_i18n import status_label

from .choices import ImageStatus, RequestState, VersionState
from .compat_selectors import (
    compatibility_matrix as compatibility_matrix,  # the /compatibility/ read
)
from .models import BaseImage, ImageRequest, ImageVersion, Registry
from .references import ImageReference, parse_reference
from .status_notes import status_note_display


def _current_version(base_image: Any = None) -> QuerySet[ImageVersion]:
    """The version `image_version_current` picks, first: as a subquery per catalog row, or
    of one `base_image`."""
    return (
        ImageVersion.objects.filter(
            base_image=OuterRef("pk") if base_image is None else base_image,
            state__in=[VersionState.APPROVED, VersionState.CANDIDATE],
        )
        .annotate(
            current_rank=Case(
                When(state=VersionState.APPROVED, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("current_rank", "-created_at", "-id")
    )


def _count_of(queryset: QuerySet[ImageVersion]) -> Subquery:
    """`(SELECT count(*) …)` of `queryset` (correlated by its OuterRef) as an integer."""
    return Subquery(
        queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"),
        output_field=IntegerField(),
    )


def base_image_list(*, scans: bool = True) -> QuerySet[BaseImage]:
    """The catalog with what the list shows, in a constant number of queries: the current
    version's scan state and open-findings summary come as two subqueries per row.

    `scans=False` (the API's list, which shows neither the scan nor the approved count)
    leaves out all but the version count: three subqueries less to build, compile and run
    on every page.

    Built once per process (`portal.querysets.built_once`): the four correlated subqueries
    took the catalog page 2 ms a request to build.
    """
    return _base_image_list(scans)


@built_once
def _base_image_list(scans: bool) -> QuerySet[BaseImage]:
    images = BaseImage.objects.select_related("replacement", "owner_team", "registry").annotate(
        # Counted per row of the page, not by a GROUP BY over every version of the catalog.
        version_count=_count_of(ImageVersion.objects.filter(base_image=OuterRef("pk"))),
    )
    if scans:
        images = images.annotate(
            approved_count=_count_of(
                ImageVersion.objects.filter(base_image=OuterRef("pk"), state=VersionState.APPROVED)
            ),
            current_scan_state=Subquery(_current_version().values("scan_state")[:1]),
            current_scan_summary=Subquery(
                _current_version().values("scan_summary")[:1], output_field=JSONField()
            ),
        )
    return images.order_by("name")


def base_image_detail() -> QuerySet[BaseImage]:
    """One entry with its versions (newest first) and replacement."""
    return BaseImage.objects.select_related(
        "replacement", "owner_team", "registry"
    ).prefetch_related(
        Prefetch(
            "versions",
            # The recipe (a Dockerfile) is on the version's own page, not in these rows.
            # Not joined to its base image: the prefetch sets each version's to the entry.
            queryset=ImageVersion.objects.select_related("registry")
            .defer("recipe")
            .order_by("-created_at", "-id"),
        )
    )


def image_version_current(image: BaseImage) -> ImageVersion | None:
    """The version to use: the newest approved one, else the newest candidate."""
    versions = list(image.versions.all())
    for state in (VersionState.APPROVED, VersionState.CANDIDATE):
        for version in versions:
            if version.state == state:
                return version
    return None


# What resolving reads of a version (the rest, the recipe, the scan's text and summary, the
# build's facts, loads when a caller reads it). The versions' image is the one resolved (set
# on each, not joined). SQL picks the few versions a reference can mean: resolving used to
# build all of an image's versions (60 of a busy one, each with its registry) and match them
# in Python, on every call of every CI pipeline.
_RESOLVE_VERSION_FIELDS = (
    "id",
    "base_image_id",
    "registry",
    "tag",
    "tags",
    "digest",
    "state",
    "created_at",
)


def _resolve_images() -> QuerySet[BaseImage]:
    """The catalog entries as resolving reads them."""
    return BaseImage.objects.select_related("replacement")


def _versions_of(
    image: BaseImage, versions: QuerySet[ImageVersion], *, first: bool = False
) -> list[ImageVersion]:
    """`versions` of `image` as resolving reads them (newest first unless `versions` is
    ordered, only the first with `first`), `image` set on each."""
    picked = versions.filter(base_image=image).select_related("registry")
    picked = picked.only(*_RESOLVE_VERSION_FIELDS)
    if not picked.query.order_by:
        picked = picked.order_by("-created_at", "-id")
    rows = list(picked[:1] if first else picked)
    for row in rows:
        row.base_image = image
    return rows


def _current_of(image: BaseImage) -> ImageVersion | None:
    """`image_version_current(image)`, read by SQL: the newest approved, else candidate."""
    current = _versions_of(image, _current_version(image), first=True)
    return current[0] if current else None


@dataclass
class Resolution:
    """The answer to "is this reference approved?"."""

    reference: ImageReference
    image: BaseImage | None = None
    version: ImageVersion | None = None
    approved: bool = False
    reasons: list[str] = field(default_factory=list)
    replacement_version: ImageVersion | None = None


def base_image_resolve(ref: str) -> Resolution:
    """Resolve `name`, `name:tag`, `registry/name:tag` or `name@sha256:…` against the catalog.

    Raises:
        ReferenceError: the text is not an image reference.
    """
    parsed = parse_reference(ref)
    result = Resolution(reference=parsed)
    images = _resolve_images()
    image = images.filter(name=parsed.repository).first()
    if image is None and not parsed.registry:
        matches = [i for i in images.filter(name__endswith="/" + parsed.short_name)]
        image = matches[0] if len(matches) == 1 else None
        if len(matches) > 1:
            names = ", ".join(i.name for i in matches)
            result.reasons.append(
                gettext("%(name)r is ambiguous: %(names)s; use a full name.")
                % {"name": parsed.short_name, "names": names}
            )
            return result
    if image is None:
        result.reasons.append(
            gettext("%(name)s is not in the catalog of approved images.")
            % {"name": parsed.repository}
        )
        return result
    result.image = image
    if parsed.registry:
        hosts = {r.host for r in Registry.objects.all()}
        if parsed.registry not in hosts:
            result.reasons.append(
                gettext("%(registry)s is not a registry the portal knows.")
                % {"registry": parsed.registry}
            )
            return result
    if parsed.digest:
        found = _versions_of(image, ImageVersion.objects.filter(digest=parsed.digest))
        result.version = found[0] if found else None
        if result.version is None:
            result.reasons.append(
                gettext("No version of %(image)s has the digest %(digest)s.")
                % {"image": image.name, "digest": parsed.digest}
            )
    elif parsed.tag:
        # `tags` as text holds every tag: a superset, matched exactly here.
        maybe = ImageVersion.objects.filter(Q(tag=parsed.tag) | Q(tags__icontains=parsed.tag))
        tagged = [
            v for v in _versions_of(image, maybe) if parsed.tag in v.tags or v.tag == parsed.tag
        ]
        approved = [v for v in tagged if v.state == VersionState.APPROVED]
        result.version = approved[0] if approved else tagged[0] if tagged else None
        if result.version is None:
            result.reasons.append(
                gettext("%(image)s has no version tagged %(tag)r.")
                % {"image": image.name, "tag": parsed.tag}
            )
        if parsed.tag == "latest":
            result.reasons.append(gettext("The 'latest' tag is not allowed: pin a digest."))
    else:
        result.version = _current_of(image)
        if result.version is None:
            result.reasons.append(
                gettext("%(image)s has no built version yet.") % {"image": image.name}
            )
    if image.status != ImageStatus.APPROVED:
        values = {"image": image.name, "status": status_label(image.status)}
        result.reasons.append(
            gettext("%(image)s is %(status)s. %(note)s")
            % {**values, "note": status_note_display(image.status_note)}
            if image.status_note
            else gettext("%(image)s is %(status)s.") % values
        )
    if result.version is not None and result.version.state != VersionState.APPROVED:
        result.reasons.append(
            gettext("Version %(tag)s is %(state)s.")
            % {"tag": result.version.tag, "state": status_label(result.version.state)}
        )
    result.approved = (
        image.status == ImageStatus.APPROVED
        and result.version is not None
        and result.version.state == VersionState.APPROVED
        and parsed.tag != "latest"
    )
    if image.replacement is not None:
        result.replacement_version = _current_of(image.replacement)
    return result


# --- image requests -----------------------------------------------------------------------------


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


def image_request_is_requester(request: ImageRequest, actor: Actor) -> bool:
    """Whether the person behind `actor` opened `request`: persons, not credentials.

    A token means its creator, on both sides: a request opened in the UI and one opened with
    a token of the same person are the same person's. (A token with no person behind it has
    no role at all, and `require_reviewer` refuses it outright.)
    """
    if actor.token is not None and request.requested_by_token_id == actor.token.pk:
        return True
    person = actor.person
    if person is None:
        return False
    requester_id = request.requested_by_id
    if requester_id is None and request.requested_by_token is not None:
        requester_id = request.requested_by_token.created_by_id
    return requester_id is not None and requester_id == person.pk


def image_request_may_edit(request: ImageRequest, actor: Actor) -> bool:
    """The requester, or a developer (or more) of the request's team."""
    if image_request_is_requester(request, actor):
        return True
    role = actor.role_in(request.team) if request.team_id else None
    return role is not None and role_at_least(role, Role.DEVELOPER)


def image_request_allowed_actions(request: ImageRequest, actor: Actor) -> list[str]:
    """The transitions `actor` may make on `request` now (for the UI's buttons)."""
    actions: list[str] = []
    if request.state in RequestState.editable() and image_request_may_edit(request, actor):
        actions += ["edit", "submit"]
    if request.state == RequestState.SUBMITTED and actor.is_platform_admin:
        # A failing report cannot be approved (the service refuses with 409): not offered.
        if not image_request_is_requester(request, actor) and request.policy_verdict != "fail":
            actions.append("approve")
        actions += ["request-changes", "reject"]
    if (
        request.state == RequestState.SCANNING
        and actor.is_platform_admin
        and not image_request_is_requester(request, actor)
        and request.image_version is not None
        and request.image_version.state == VersionState.CANDIDATE
    ):
        actions.append("publish")
    if image_request_may_edit(request, actor) or actor.is_platform_admin:
        actions.append("comment")
    return actions


def image_version_with_tag(*, name: str, tag: str) -> ImageVersion | None:
    """The oldest version of image `name` that carries `tag` (as its tag or in `tags`).

    Checked in Python over the image's versions (a handful per image): a JSON `contains`
    lookup is not available on SQLite, the embedded default database.
    """
    versions = ImageVersion.objects.filter(base_image__name=name).order_by("created_at", "id")
    for version in versions.only("id", "tag", "tags", "digest", "state", "created_at"):
        if version.tag == tag or tag in (version.tags or []):
            return version
    return None
