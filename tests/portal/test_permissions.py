"""The permission matrix: role × endpoint × method → expected status.

Each row names an endpoint and the status every kind of caller gets. Add a row for every new
endpoint; callers are: anonymous, a viewer/developer/maintainer of the service team, a platform
admin, and tokens (service team) with and without the scope the endpoint needs.
"""

from __future__ import annotations

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
