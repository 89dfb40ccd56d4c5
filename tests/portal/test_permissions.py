"""The permission matrix: role × endpoint × method → expected status.

Each row names an endpoint and the status every kind of caller gets. Add a row for every new
endpoint; callers are: anonymous, a viewer/developer/maintainer of the service team, a platform
admin, and tokens (service team) with and without the scope the endpoint needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from portal.actors import Actor
from portal.choices import Role
from portal.jobs import job_create
from portal.models import Job

pytestmark = pytest.mark.django_db

CALLERS = ("anon", "viewer", "developer", "maintainer", "admin", "token_scoped", "token_other")


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    scope: str | None  # the scope token_scoped gets; token_other gets dockerfile:check only
    expect: dict[str, int]


def row(method: str, path: str, scope: str | None, *statuses: int) -> Row:
    return Row(method, path, scope, dict(zip(CALLERS, statuses, strict=True)))


#        method  path                                scope          anon vie dev mai adm tok oth
MATRIX = [
    row("GET", "/api/v1/base-images/", "images:read", 401, 200, 200, 200, 200, 200, 403),
    row("GET", "/api/v1/base-images/{image}/", "images:read", 401, 200, 200, 200, 200, 200, 403),
    row(
        "GET",
        "/api/v1/base-images/resolve/?ref=debian",
        "images:read",
        401,
        200,
        200,
        200,
        200,
        200,
        403,
    ),
    row("POST", "/api/v1/base-images/", "images:read", 401, 405, 405, 405, 405, 405, 403),
    row("DELETE", "/api/v1/base-images/{image}/", "images:read", 401, 405, 405, 405, 405, 405, 403),
    row("GET", "/api/v1/jobs/", None, 401, 200, 200, 200, 200, 200, 200),
    row("GET", "/api/v1/jobs/{admin_job}/", None, 401, 404, 404, 404, 200, 404, 404),
    row("POST", "/api/v1/jobs/{admin_job}/cancel/", None, 401, 404, 404, 404, 200, 404, 404),
    row("GET", "/api/v1/jobs/{team_job}/", None, 401, 200, 200, 200, 200, 200, 200),
    # cancel: a developer of the job's team or a platform admin; a token needs a write scope
    # (changed deliberately: only the job's starter or an admin could, and any token of the
    # platform team counted as an admin, H2); the job is queued again before every caller.
    row(
        "POST", "/api/v1/jobs/{team_job}/cancel/", "images:write", 401, 403, 200, 200, 200, 200, 403
    ),
    row(
        "POST", "/api/v1/jobs/{team_job}/cancel/", "images:read", 401, 403, 200, 200, 200, 403, 403
    ),
    # UI pages (anonymous callers are sent to the login page)
    row("GET", "/base-images/", None, 302, 200, 200, 200, 200, 302, 302),
    row("GET", "/audit/", None, 302, 403, 403, 403, 200, 302, 302),
    row("GET", "/tokens/", None, 302, 200, 200, 200, 200, 302, 302),
    row("POST", "/registry-syncs/", None, 302, 403, 403, 403, 302, 302, 302),
    # Image requests (a published request of the service team: every transition is a 409)
    row("GET", "/api/v1/image-requests/", "images:read", 401, 200, 200, 200, 200, 200, 403),
    row("POST", "/api/v1/image-requests/", "images:write", 401, 403, 400, 400, 400, 400, 403),
    row(
        "GET", "/api/v1/image-requests/{request}/", "images:read", 401, 200, 200, 200, 200, 200, 403
    ),
    row(
        "POST",
        "/api/v1/image-requests/{request}/submit/",
        "images:write",
        *(401, 403, 409, 409, 403, 409, 403),
    ),
    row(
        "POST",
        "/api/v1/image-requests/{request}/comment/",
        "images:write",
        *(401, 403, 400, 400, 400, 400, 403),
    ),
    row(
        "POST",
        "/api/v1/image-requests/{request}/approve/",
        "images:write",
        *(401, 403, 403, 403, 409, 403, 403),
    ),
    row(
        "POST",
        "/api/v1/image-requests/{request}/reject/",
        "images:write",
        *(401, 403, 403, 403, 400, 403, 403),
    ),
    row(
        "POST",
        "/api/v1/image-requests/{request}/request-changes/",
        "images:write",
        *(401, 403, 403, 403, 400, 403, 403),
    ),
    row(
        "GET", "/api/v1/image-versions/{version}/", "images:read", 401, 200, 200, 200, 200, 200, 403
    ),
    row(
        "POST",
        "/api/v1/image-versions/{version}/publish/",
        "images:write",
        *(401, 403, 403, 403, 409, 403, 403),
    ),
    row("GET", "/image-requests/", None, 302, 200, 200, 200, 200, 302, 302),
    row("GET", "/image-requests/?queue=review", None, 302, 403, 403, 403, 200, 302, 302),
    row("GET", "/image-requests/new/", None, 302, 200, 200, 200, 200, 302, 302),
    row("GET", "/image-requests/{request}/", None, 302, 200, 200, 200, 200, 302, 302),
]


@pytest.fixture
def world(make_user, service_team, platform_team, admin_user, demo_catalog):
    from images.models import BaseImage

    users = {
        "viewer": make_user("v", service_team, Role.VIEWER),
        "developer": make_user("d", service_team, Role.DEVELOPER),
        "maintainer": make_user("m", service_team, Role.MAINTAINER),
        "admin": admin_user,
    }
    admin_job, _ = job_create(kind="portal.selftest", actor=Actor(user=admin_user))
    team_job, _ = job_create(
        kind="portal.selftest", actor=Actor(user=admin_user), team=service_team
    )
    from images.models import ImageRequest
    from tests.images.factories import ImageVersionFactory

    debian = BaseImage.objects.get(name="runtime/debian")
    version = ImageVersionFactory(base_image=debian, registry=debian.registry, state="approved")
    request = ImageRequest.objects.create(
        name="runtime/debian-curl",
        tag="12-1",
        kind="runtime",
        os_family="debian",
        os_version="12",
        recipe_kind="dockerfile",
        recipe="FROM runtime/debian:12\n",
        justification="matrix",
        state="published",
        team=service_team,
        requested_by=users["developer"],
        image_version=version,
    )
    return {
        "users": users,
        "ids": {
            "request": request.pk,
            "version": version.pk,
            "image": debian.pk,
            "admin_job": admin_job.pk,
            "team_job": team_job.pk,
        },
    }


def client_for(caller, entry, world, make_token, service_team):
    from django.test import Client
    from rest_framework.test import APIClient

    api = entry.path.startswith("/api/")
    client = APIClient() if api else Client()
    if caller in world["users"]:
        client.force_login(world["users"][caller])
    elif caller.startswith("token"):
        scopes = (
            [entry.scope or "images:read"] if caller == "token_scoped" else ["dockerfile:check"]
        )
        secret = make_token(service_team, scopes)
        if api:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize("entry", MATRIX, ids=lambda r: f"{r.method} {r.path}")
def test_permission_matrix(entry, world, make_token, service_team):
    path = entry.path.format(**world["ids"])
    failures = []
    for caller in CALLERS:
        Job.objects.filter(state="cancelled").update(state="queued")  # each caller cancels anew
        client = client_for(caller, entry, world, make_token, service_team)
        response = getattr(client, entry.method.lower())(path)
        if response.status_code != entry.expect[caller]:
            failures.append(f"{caller}: {response.status_code} != {entry.expect[caller]}")
        if path.startswith("/api/") and response.status_code >= 400:
            body = response.json()
            assert set(body) >= {"detail", "code"}, body
    assert not failures, failures


# --- deployments: services, environments, deployments, releases (UI forms + fetch token) ----
# A service "orders" of the service team, an environment "prod" and a deployment of it.

#        method  path                                scope          anon vie dev mai adm tok oth
DEPLOYMENTS_MATRIX = [
    row("GET", "/services/", None, 302, 200, 200, 200, 200, 302, 302),
    row("GET", "/services/orders/", None, 302, 200, 200, 200, 200, 302, 302),
    row("GET", "/services/new/", None, 302, 403, 403, 200, 200, 302, 302),
    row("POST", "/services/new/", None, 302, 403, 403, 400, 400, 302, 302),
    row("GET", "/services/orders/deploy/", None, 302, 403, 200, 200, 403, 302, 302),
    row("POST", "/services/orders/deploy/", None, 302, 403, 400, 400, 403, 302, 302),
    row("GET", "/environments/", None, 302, 200, 200, 200, 200, 302, 302),
    row("GET", "/environments/new/", None, 302, 403, 403, 403, 200, 302, 302),
    row("POST", "/environments/new/", None, 302, 403, 403, 403, 400, 302, 302),
    row("GET", "/environments/prod/", None, 302, 200, 200, 200, 200, 302, 302),
    row("POST", "/environments/prod/", None, 302, 403, 403, 403, 200, 302, 302),
    row("GET", "/deployments/{deployment}/", None, 302, 200, 200, 200, 200, 302, 302),
    row("POST", "/deployments/{deployment}/", None, 302, 403, 302, 302, 403, 302, 302),
    row(
        "POST",
        "/api/v1/environments/prod/fetch-token/",
        "deployments:write",
        *(401, 403, 403, 403, 201, 403, 403),
    ),
    # push a binary as an OCI artifact: the owning team's developers (one live job, so 202 again)
    row(
        "POST",
        "/api/v1/binaries/{binary}/artifact/",
        "binaries:write",
        *(401, 403, 202, 202, 403, 202, 403),
    ),
    row("POST", "/binaries/{binary}/artifact/", None, 302, 403, 302, 302, 403, 302, 302),
]


@pytest.fixture
def deployments_world(world, service_team, settings):
    from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory

    settings.PORTAL_URL = "https://portal.example.com"
    service = ServiceFactory(name="orders", team=service_team)
    deployment = DeploymentFactory(
        service=service,
        environment=EnvironmentFactory(name="prod", namespace="payments-prod"),
        runtime_version_id=world["ids"]["version"],
    )
    return {
        **world,
        "ids": {
            **world["ids"],
            "deployment": deployment.pk,
            "binary": deployment.binary_version_id,
        },
    }


@pytest.mark.parametrize("entry", DEPLOYMENTS_MATRIX, ids=lambda r: f"{r.method} {r.path}")
def test_deployments_permission_matrix(entry, deployments_world, make_token, service_team):
    test_permission_matrix(entry, deployments_world, make_token, service_team)


# --- tokens: creator's role × scope × team × endpoint, and the persons rule ---------------------
# Every token carries the row's scope and was minted while its creator held the team's highest
# role; the creator was then set to the column's role (so the check is at use, not at mint).
# svc_*: payments tokens of a viewer/developer/maintainer; plat_*: platform tokens of a viewer,
# a developer, the admin who opened {own_request}, and a second admin; gone: a platform admin
# removed from the team; fetch: an environment's fetch token (binaries:read, whatever the row).
# None: such a token cannot exist (images:review on a service team).

TOKEN_CALLERS = (
    "svc_viewer",
    "svc_dev",
    "svc_maint",
    "plat_viewer",
    "plat_dev",
    "plat_admin",
    "plat_admin2",
    "gone",
    "fetch",
)
ENV_BODY = {
    "name": "qa",
    "namespace": "qa",
    "k8s_version": "1.33",
    "delivery_strategy": "initFetch",
}


@dataclass(frozen=True)
class TokenRow:
    method: str
    path: str
    scope: str
    expect: dict[str, int | None]
    data: dict[str, str] | None = None


def trow(method, path, scope, statuses, data=None):
    """`statuses`: one per TOKEN_CALLERS, space-separated; `-` where the token cannot exist."""
    codes = [None if code == "-" else int(code) for code in statuses.split()]
    return TokenRow(method, path, scope, dict(zip(TOKEN_CALLERS, codes, strict=True)), data)


# statuses: svc_viewer svc_dev svc_maint plat_viewer plat_dev plat_admin plat_admin2 gone fetch
TOKEN_MATRIX = [
    trow("GET", "/api/v1/base-images/", "images:read",
         "200 200 200 200 200 200 200 403 403"),
    trow("POST", "/api/v1/image-requests/", "images:write",
         "403 400 400 403 400 400 400 403 403"),
    trow("POST", "/api/v1/services/", "services:write",
         "403 403 400 403 403 400 400 403 403"),
    trow("GET", "/api/v1/binaries/{binary}/download/", "binaries:read",
         "200 200 200 200 200 200 200 403 200"),
    trow("GET", "/api/v1/binaries/{binary}/", "binaries:read",
         "200 200 200 200 200 200 200 403 403"),
    # jobs: the team's jobs (platform admins: all); cancel needs a developer and a write scope
    trow("GET", "/api/v1/jobs/", "images:read",
         "200 200 200 200 200 200 200 403 403"),
    trow("GET", "/api/v1/jobs/{team_job}/", "images:read",
         "200 200 200 404 404 200 200 403 403"),
    trow("GET", "/api/v1/jobs/{admin_job}/", "images:read",
         "404 404 404 404 404 200 200 403 403"),
    trow("POST", "/api/v1/jobs/{team_job}/cancel/", "images:write",
         "403 200 200 404 404 200 200 403 403"),
    trow("POST", "/api/v1/jobs/{team_job}/cancel/", "images:read",
         "403 403 403 404 404 403 403 403 403"),
    # environments and fetch tokens: platform admins (not any holder of deployments:write)
    trow("POST", "/api/v1/environments/", "deployments:write",
         "403 403 403 403 403 201 409 403 403", data=ENV_BODY),
    trow("POST", "/api/v1/environments/prod/fetch-token/", "deployments:write",
         "403 403 403 403 403 201 201 403 403"),
    # four eyes: the admin behind plat_admin's token opened {own_request} (requested_by, as in
    # the UI); the API and UI directions are in tests/images/test_workflow.py (H1)
    trow("POST", "/api/v1/image-requests/{own_request}/approve/", "images:review",
         "- - - 403 403 403 202 403 403"),
    trow("POST", "/api/v1/image-versions/{own_candidate}/publish/", "images:review",
         "- - - 403 403 403 200 403 403"),
    trow("POST", "/api/v1/image-requests/{request}/comment/", "images:write",
         "403 400 400 403 404 400 400 403 403"),
]  # fmt: skip


@pytest.fixture
def token_world(
    deployments_world, make_user, platform_team, service_team, admin_user, settings, tmp_path
):
    from django.core.files.base import ContentFile

    from deployments.models import BinaryVersion
    from deployments.storage import binary_store
    from images.models import BaseImage, ImageRequest
    from tests.images.factories import ImageVersionFactory

    own = {}
    for name, state in (("own_request", "submitted"), ("own_candidate", "scanning")):
        own[name] = ImageRequest.objects.create(
            name=f"runtime/debian-{name.replace('_', '-')}",
            tag="12-1",
            kind="runtime",
            os_family="debian",
            os_version="12",
            recipe_kind="dockerfile",
            recipe=(
                "FROM runtime/debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n"
            ),
            justification="matrix",
            state=state,
            policy_verdict="pass",
            team=platform_team,
            requested_by=admin_user,
        )
    debian = BaseImage.objects.get(name="runtime/debian")
    candidate = ImageVersionFactory(base_image=debian, registry=debian.registry, state="candidate")
    ImageRequest.objects.filter(pk=own["own_candidate"].pk).update(image_version=candidate)
    settings.STORAGES = {
        **settings.STORAGES,
        "binaries": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    payload = b"matrix"
    sha = hashlib.sha256(payload).hexdigest()
    name, _ = binary_store(sha256=sha, content=ContentFile(payload))
    binary = BinaryVersion.objects.get(pk=deployments_world["ids"]["binary"])
    BinaryVersion.objects.filter(pk=binary.pk).update(file=name, sha256=sha, size=len(payload))
    people = {
        "svc_viewer": (service_team, make_user("tv", service_team, Role.MAINTAINER), Role.VIEWER),
        "svc_dev": (service_team, make_user("td", service_team, Role.MAINTAINER), Role.DEVELOPER),
        "svc_maint": (service_team, make_user("tm", service_team, Role.MAINTAINER), None),
        "plat_viewer": (platform_team, make_user("pv", platform_team, "platform-admin"), "viewer"),
        "plat_dev": (platform_team, make_user("pd", platform_team, "platform-admin"), "developer"),
        "plat_admin": (platform_team, admin_user, None),
        "plat_admin2": (platform_team, make_user("pa2", platform_team, "platform-admin"), None),
        "gone": (platform_team, make_user("pg", platform_team, "platform-admin"), "gone"),
    }
    return {
        **deployments_world,
        "people": people,
        "ids": {
            **deployments_world["ids"],
            "own_request": own["own_request"].pk,
            "own_candidate": candidate.pk,
            "binary": binary.pk,
        },
    }


def _token_for(caller, entry, world, make_token):
    from portal.models import Membership

    if caller == "fetch":  # a fresh one: a rotation in an earlier column revokes the last
        from deployments.models import Environment
        from deployments.services import environment_fetch_token_create

        return environment_fetch_token_create(
            environment=Environment.objects.get(name="prod"), actor=Actor(system="matrix")
        ).secret
    team, user, then = world["people"][caller]
    secret = make_token(team, [entry.scope], user=user)
    if then == "gone":
        Membership.objects.filter(user=user, team=team).delete()
    elif then is not None:
        Membership.objects.filter(user=user, team=team).update(role=then)
    return secret


def _candidate_in_registry(pk, request):
    from images.models import ImageVersion, Registry
    from tests.fixtures.registry import put_image

    running = request.getfixturevalue("scratch_registry")
    candidate = ImageVersion.objects.select_related("base_image").get(pk=pk)
    Registry.objects.filter(pk=candidate.registry_id).update(url=running.url, tls_verify=False)
    digest = put_image(running.url, candidate.base_image.name, f"{candidate.tag}-candidate-1")
    ImageVersion.objects.filter(pk=pk).update(digest=digest)


@pytest.mark.parametrize("entry", TOKEN_MATRIX, ids=lambda r: f"{r.method} {r.path} {r.scope}")
def test_token_permission_matrix(entry, token_world, make_token, request):
    from rest_framework.test import APIClient

    from portal.models import Membership

    if "{own_candidate}" in entry.path:  # publishing moves the registry tag: a real registry
        _candidate_in_registry(token_world["ids"]["own_candidate"], request)

    path = entry.path.format(**token_world["ids"])
    failures = []
    for caller in TOKEN_CALLERS:
        expected = entry.expect[caller]
        if expected is None:
            continue
        Job.objects.filter(state="cancelled").update(state="queued")
        # each caller sees its creator's role as of now: restore the minted roles first
        for team, user, _ in token_world["people"].values():
            top = Role.PLATFORM_ADMIN if team.is_platform else Role.MAINTAINER
            Membership.objects.update_or_create(team=team, user=user, defaults={"role": top})
        client = APIClient()
        secret = _token_for(caller, entry, token_world, make_token)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        response = getattr(client, entry.method.lower())(
            path, entry.data, format="json", HTTP_ACCEPT="application/json"
        )
        if response.status_code != expected:
            failures.append(f"{caller}: {response.status_code} != {expected}")
        if response.status_code >= 400:
            assert set(response.json()) >= {"detail", "code"}, response.json()
    assert not failures, failures
