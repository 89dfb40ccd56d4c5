"""Reads of the deployments app, each in a constant number of queries (`impact`: the blast
radius of an advisory)."""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any

from django.db.models import (
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Now
from django.http import Http404
from django.utils.translation import gettext

from images.choices import ImageKind, ImageStatus, VersionState
from images.models import ImageVersion
from images.policy import DockerfileInputError, ServiceContext
from images.texts import message_render
from portal.actors import Actor
from portal.compiled import compiled_models, compiled_rows
from portal.models import Team
from portal.querysets import built_once
from portal.validators import is_dns_label

from ..choices import DeliveryStrategy, DeploymentMode
from ..manifests import DaemonSetEntry, ManifestError, render_hostpath_daemonset
from ..models import (
    BinaryVersion,
    Deployment,
    Environment,
    PlanItem,
    PolicyException,
    Release,
    Service,
)

# The big text of an image version none of these lists shows.
_VERSION_TEXT = ("runtime_version__recipe",)


class BadServiceName(ValueError):
    """A service name in a URL that cannot be a service (path characters, upper case …)."""


def team_readable(actor: Actor, team_field: str) -> Q:
    """The rows whose `team_field` (a path to a Team) `actor` may read.

    Service teams read their own teams' services, binaries, deployments and releases; the
    platform team (every role, its fetch tokens included) and platform admins read every
    team's. Whether one of the actor's teams is a platform team is asked inside the same
    query (a subquery on its `team_ids`), so scoping adds no query to a list.
    """
    return teams_readable(readable_teams(actor), team_field)


def readable_teams(actor: Actor) -> tuple[int, ...] | None:
    """What `team_readable` filters by: None for every team's rows (a platform admin), else
    the actor's team ids (none: no rows). A key a compiled read is planned by."""
    if actor.user is None and actor.token is None and actor.system == "anonymous":
        return ()  # `Actor.from_request` without credentials: no team, no rows
    if actor.is_platform_admin:
        return None
    return tuple(sorted(actor.team_ids))


def teams_readable(team_ids: tuple[int, ...] | None, team_field: str) -> Q:
    """`team_readable` for `readable_teams`' answer."""
    if team_ids is None:
        return Q()
    if not team_ids:
        return Q(pk__in=[])
    in_platform_team = Exists(Team.objects.filter(pk__in=team_ids, is_platform=True))
    return Q(**{f"{team_field}__in": team_ids}) | Q(in_platform_team)


def service_get(name: str, *, actor: Actor | None = None) -> Service:
    """The service called `name`; with `actor`, only if the actor may read it.

    Without `actor` the lookup is unscoped: for writes, whose services check the role in
    the service's team themselves (and answer 403).

    Raises:
        BadServiceName: `name` is not a DNS-1123 label (e.g. contains '/', '..', '%').
        Http404: no such service, or (with `actor`) one of a team the actor cannot read:
            the same answer, so names of other teams' services do not leak.
    """
    return _service_named(Service.objects.select_related("team"), name, actor)


def _check_service_name(name: str) -> None:
    if not is_dns_label(name or ""):
        raise BadServiceName(
            gettext(
                "%(name)r is not a service name: service names are DNS-1123 labels (lowercase "
                "letters, digits and '-'; no '/', '.', or other path characters)."
            )
            % {"name": name}
        )


def _service_named(services: QuerySet[Service], name: str, actor: Actor | None) -> Service:
    _check_service_name(name)
    services = services.filter(name=name)
    if actor is not None:
        services = services.filter(team_readable(actor, "team"))
    service = services.first()
    if service is None:
        raise _no_service(name)
    return service


def _no_service(name: str) -> Http404:
    return Http404(gettext("No service named %(name)r in your teams.") % {"name": name})


def service_page_get(name: str, *, actor: Actor) -> Service:
    """`service_get` for the service's own page, with what tells it which of its sections
    need a query of their own: the newest binary built in a known build image
    (`built_binary_id`, None for most services) and whether a Dockerfile-policy exception
    is open (`has_open_exceptions`). Two queries a page less where, as mostly, neither is.
    Its SQL is compiled once (`portal.compiled`)."""
    _check_service_name(name)
    found = _service_page_models(name, readable_teams(actor))
    if not found:
        raise _no_service(name)
    return found[0]


@compiled_models
def _service_page_models(name: str, team_ids: tuple[int, ...] | None) -> QuerySet[Service]:
    return _service_page().filter(teams_readable(team_ids, "team"), name=name).order_by("pk")[:1]


@built_once
def _service_page() -> QuerySet[Service]:
    return Service.objects.select_related("team").annotate(
        built_binary_id=Subquery(
            BinaryVersion.objects.filter(service=OuterRef("pk"), built_in__isnull=False)
            .order_by("-created_at", "-id")
            .values("pk")[:1]
        ),
        has_open_exceptions=Exists(
            PolicyException.objects.filter(service=OuterRef("pk"), expires_at__gt=Now())
        ),
    )


def service_policy_context(name: str, today: dt.date) -> ServiceContext:
    """What the Dockerfile check needs to know of service `name`: its language and the
    subjects of its unexpired policy exceptions (registered with the images app at start).

    Raises:
        DockerfileInputError: the name is malformed or no such service exists (400).
    """
    if not is_dns_label(name):
        raise DockerfileInputError(
            gettext(
                "The service name %(name)r is not a DNS-1123 label (lowercase letters, digits "
                "and '-', at most 63 characters)."
            )
            % {"name": name[:80]}
        )
    service = Service.objects.filter(name=name).first()
    if service is None:
        raise DockerfileInputError(
            gettext(
                "Unknown service %(name)r: no service of that name is registered in the portal."
            )
            % {"name": name}
        )
    now = dt.datetime.combine(today, dt.time.min, tzinfo=dt.UTC)
    subjects = PolicyException.objects.filter(service=service, expires_at__gt=now).values_list(
        "subject", flat=True
    )
    return ServiceContext(name=name, language=service.language, exceptions=frozenset(subjects))


def service_team_id(name: str) -> int | None:
    """The team id of service `name` (None: no such service); registered with images' waivers."""
    team_id: int | None = (
        Service.objects.filter(name=name).values_list("team_id", flat=True).first()
    )
    return team_id


def _latest_release_number() -> Subquery:
    """A deployment's newest release number, a subquery of each row (none: NULL)."""
    return Subquery(
        Release.objects.filter(deployment=OuterRef("pk")).order_by("-number").values("number")[:1]
    )


def _count_of(queryset: QuerySet[Any]) -> Subquery:
    """`(SELECT count(*) …)` of `queryset` (correlated by its OuterRef) as an integer."""
    return Subquery(
        queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"),
        output_field=IntegerField(),
    )


@built_once
def service_list() -> QuerySet[Service]:
    """Services with their team, version count and newest upload time.

    The counts are correlated subqueries of the page's rows: a GROUP BY over services ×
    binaries × deployments cost every page the whole join (591 ms at company scale).
    """
    return (
        Service.objects.select_related("team")
        .annotate(
            version_count=_count_of(BinaryVersion.objects.filter(service=OuterRef("pk"))),
            deployment_count=_count_of(Deployment.objects.filter(service=OuterRef("pk"))),
            last_upload=Subquery(
                BinaryVersion.objects.filter(service=OuterRef("pk"))
                .order_by("-created_at", "-id")
                .values("created_at")[:1]
            ),
        )
        .order_by("name")
    )


def service_list_for_actor(actor: Actor) -> QuerySet[Service]:
    """`service_list` narrowed to the services `actor` may read (see `team_readable`)."""
    return service_list().filter(team_readable(actor, "team"))


def binary_version_list(service: Service | None = None) -> QuerySet[BinaryVersion]:
    """Binary versions (newest first) with uploader and the environments that run them."""
    versions = BinaryVersion.objects.select_related(
        "service", "service__team", "uploaded_by", "uploaded_by_token"
    ).prefetch_related(
        Prefetch(
            "deployments",
            queryset=Deployment.objects.select_related("environment").order_by("environment__name"),
        )
    )
    if service is not None:
        versions = versions.filter(service=service)
    return versions.order_by("-created_at", "-id")


def service_binary_versions(service: Service) -> QuerySet[Any]:
    """A service's binary versions for its page (newest first), as `values()` rows of the
    shown columns and the uploader's name. Where each runs comes from `service_deployments`,
    which the page reads anyway (a service is deployed at most once per environment)."""
    return (
        BinaryVersion.objects.filter(service=service)
        .values(
            "id",
            "version",
            "arch",
            "sha256",
            "size",
            "file_type",
            "linkage",
            "needed",
            "min_glibc",
            "commit",
            "artifact_ref",
            "state",
            "created_at",
            "uploaded_by__username",
            "uploaded_by_token__name",
        )
        .order_by("-created_at", "-id")
    )


def service_deployments(service: Service) -> list[dict[str, Any]]:
    """A service's deployments for its page, by environment name, as rows: the id, mode,
    environment, binary (id and version), the runtime's image and tag and the newest release
    number. Rows, not models: three related models a deployment were built to show a name
    each. Its SQL is compiled once (`portal.compiled`)."""
    return _service_deployment_rows(service.pk)


@compiled_rows
def _service_deployment_rows(service_id: int) -> QuerySet[Any]:
    return _service_deployments().filter(service_id=service_id)


@built_once
def _service_deployments() -> QuerySet[Any]:
    return (
        Deployment.objects.annotate(latest_release=_latest_release_number())
        .order_by("environment__name")
        .values(
            "id",
            "mode",
            "environment__name",
            "binary_version",
            "binary_version__version",
            "runtime_version__tag",
            "runtime_version__base_image__name",
            "latest_release",
        )
    )


def binary_version_list_for_actor(
    actor: Actor, service: Service | None = None
) -> QuerySet[BinaryVersion]:
    """`binary_version_list` narrowed to the services `actor` may read."""
    return binary_version_list(service).filter(team_readable(actor, "service__team"))


@built_once
def environment_list() -> QuerySet[Environment]:
    """Environments with their deployment count (a subquery per row, not a GROUP BY)."""
    return Environment.objects.annotate(
        deployment_count=_count_of(Deployment.objects.filter(environment=OuterRef("pk")))
    ).order_by("name")


@built_once
def deployment_list() -> QuerySet[Deployment]:
    """Deployments with service, environment, versions and their newest release number."""
    return (
        Deployment.objects.select_related(
            "service",
            "service__team",
            "environment",
            "binary_version",
            "runtime_version",
            "runtime_version__base_image",
            "runtime_version__registry",
        )
        .defer(*_VERSION_TEXT)
        .annotate(latest_release=_latest_release_number())
        .order_by("service__name", "environment__name")
    )


def deployment_list_for_actor(actor: Actor) -> QuerySet[Deployment]:
    """`deployment_list` narrowed to the services `actor` may read."""
    return deployment_list().filter(team_readable(actor, "service__team"))


def deployment_page_get(pk: int, actor: Actor) -> Deployment | None:
    """What a deployment's page shows of deployment `pk`, if `actor` may read it: the
    service, environment, current binary and runtime (its pull reference), the newest
    release number and whether any plan moves it (`in_plans`). `deployment_list`'s seven
    tables with every column took 3.2 ms to compile for one row, these six 1.3 ms: the SQL
    is compiled once (`portal.compiled`). A release is still created from the whole
    deployment."""
    found = _deployment_page_models(pk, readable_teams(actor))
    return found[0] if found else None


@compiled_models
def _deployment_page_models(pk: int, team_ids: tuple[int, ...] | None) -> QuerySet[Deployment]:
    return _deployment_page().filter(teams_readable(team_ids, "service__team"), pk=pk)


@built_once
def _deployment_page() -> QuerySet[Deployment]:
    return (
        Deployment.objects.select_related(
            "service__team",
            "environment",
            "binary_version",
            "runtime_version__base_image",
            "runtime_version__registry",
        )
        .only(
            "mode",
            "args",
            "service__name",
            "service__team__name",
            "environment__name",
            "environment__k8s_version",
            "environment__namespace",
            "environment__delivery_strategy",
            "binary_version__version",
            "runtime_version__tag",
            "runtime_version__digest",
            "runtime_version__base_image__name",
            "runtime_version__registry__url",
        )
        .annotate(
            latest_release=_latest_release_number(),
            # Most deployments are in no rebase or migration plan: the page asks for the
            # items only when there are some.
            in_plans=Exists(PlanItem.objects.filter(deployment=OuterRef("pk"))),
        )
    )


def deployment_readable(actor: Actor) -> QuerySet[Deployment]:
    """The deployments `actor` may read, their own columns alone (for a read that needs only
    that the reader may see one: its releases)."""
    return Deployment.objects.filter(team_readable(actor, "service__team"))


@built_once
def release_list() -> QuerySet[Release]:
    """Releases with what their tables show (the manifest text is deferred)."""
    return (
        Release.objects.select_related(
            "deployment",
            "deployment__service",
            "deployment__environment",
            "binary_version",
            "runtime_version",
            "runtime_version__base_image",
            "created_by",
            "created_by_token",
            "rollback_of",
        )
        .defer(
            "manifest_yaml",
            "dockerfile",
            "runtime_version__recipe",
            "rollback_of__manifest_yaml",
            "rollback_of__dockerfile",
        )
        .order_by("-deployment_id", "-number")
    )


def release_history(deployment: Deployment) -> QuerySet[Any]:
    """A deployment's releases as `values()` rows with what its page's history table shows:
    two small relations and the users', not `release_list`'s ten tables (25 rows of those
    took 9 ms to build; as models with these columns 2.2, as rows 1.1)."""
    return _release_history().filter(deployment=deployment)


@built_once
def _release_history() -> QuerySet[Any]:
    return Release.objects.values(
        "id",
        "number",
        "binary_sha256",
        "base_digest",
        "manifest_sha256",
        "created_at",
        "binary_version__version",
        "binary_version__state",
        "rollback_of__number",
        "created_by__username",
        "created_by_token__name",
    ).order_by("-number")


def release_list_for_actor(actor: Actor) -> QuerySet[Release]:
    """`release_list` narrowed to the services `actor` may read."""
    return release_list().filter(team_readable(actor, "deployment__service__team"))


def release_diff(a: Release, b: Release) -> str:
    """Unified diff of two releases' manifests (and Dockerfiles, in image mode)."""
    lines = list(
        difflib.unified_diff(
            a.manifest_yaml.splitlines(keepends=True),
            b.manifest_yaml.splitlines(keepends=True),
            fromfile=f"release-{a.number}.yaml",
            tofile=f"release-{b.number}.yaml",
        )
    )
    if a.dockerfile or b.dockerfile:
        lines += difflib.unified_diff(
            a.dockerfile.splitlines(keepends=True),
            b.dockerfile.splitlines(keepends=True),
            fromfile=f"release-{a.number}.Dockerfile",
            tofile=f"release-{b.number}.Dockerfile",
        )
    return "".join(lines)


def live_releases(environment: Environment) -> QuerySet[Release]:
    """The newest release of every deployment in `environment`."""
    newest = Release.objects.filter(deployment=OuterRef("pk")).order_by("-number").values("pk")[:1]
    ids = (
        Deployment.objects.filter(environment=environment)
        .annotate(live=Subquery(newest))
        .values("live")
    )
    return Release.objects.filter(pk__in=ids).select_related(
        "deployment__service",
        "binary_version",
        "runtime_version__base_image",
        "runtime_version__registry",
    )


def _fetch_image(releases: list[Release]) -> ImageVersion | None:
    for release in releases:
        if release.runtime_version.state == VersionState.APPROVED:
            return release.runtime_version
    return (
        ImageVersion.objects.select_related("base_image", "registry")
        .filter(
            state=VersionState.APPROVED,
            base_image__kind=ImageKind.RUNTIME,
            base_image__status=ImageStatus.APPROVED,
        )
        .order_by("-created_at", "-id")
        .first()
    )


def environment_hostpath_sync_yaml(environment: Environment, *, actor: Actor) -> str:
    """The ConfigMap + DaemonSet keeping the hostPath binaries of the live releases on nodes.

    The environment is shared, its entries are not: a service team's actor gets the entries
    of its own services only, the platform team (its fetch tokens) every entry.

    Raises:
        ValueError: there is no approved runtime image to run the sync container, or the
            renderer refused a value.
    """
    from ..services import binary_download_url

    releases = [
        r
        for r in live_releases(environment)
        .filter(team_readable(actor, "deployment__service__team"))
        .order_by("deployment__service__name")
        if r.strategy == DeliveryStrategy.HOSTPATH and r.deployment.mode == DeploymentMode.VOLUME
    ]
    fetch = _fetch_image(releases)
    if fetch is None:
        raise ValueError(
            gettext(
                "No approved runtime image version exists to run the sync DaemonSet; approve one "
                "in the catalog first."
            )
        )
    entries: list[DaemonSetEntry] = []
    seen: set[tuple[str, str]] = set()
    for release in releases:
        bv = release.binary_version
        key = (release.deployment.service.name, bv.version)
        if key in seen:
            continue
        seen.add(key)
        entries.append((key[0], bv.version, bv.sha256, binary_download_url(bv), bv.filename))
    from django.conf import settings

    try:
        return render_hostpath_daemonset(
            environment.name,
            environment.namespace,
            settings.PORTAL_URL,
            entries,
            fetch.pull_ref,
            hostpath_root=environment.hostpath_root,
            fetch_token_secret=environment.fetch_token_secret,
        )
    except ManifestError as exc:
        raise ValueError("; ".join(message_render(e, gettext) for e in exc.errors)) from exc
