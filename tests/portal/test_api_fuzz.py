"""The whole API fuzzed from its own OpenAPI schema (schemathesis), as two kinds of client.

Every operation of `/api/schema/` gets a bounded number of generated requests (hypothesis,
derandomized, so a run is reproducible), each sent through the real WSGI application twice:
with the token of a service team's maintainer and with that of a platform admin, both holding
every scope their role allows. Each response must not be a server error and must be described
by the schema: its status code, its content type and its body (the error responses too: one
`Error` shape, portal/schema.py). Path parameters name a real object of a small world half of
the time, so the fuzzer reaches the object's handlers and not only the 404.

Where the time went (99 operations): generating the cases (hypothesis), building the world
(a release is rendered and validated) for every test, and the requests. So one case serves
both clients (one generation, two requests), and the world is built once for the module,
inside a transaction rolled back at its end; each operation's test runs in a savepoint within
it (pytest-django's `db`), so whatever a fuzzed request changes is undone before the next
operation, as when every test built its own world.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest
import schemathesis
import yaml
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.actors import Actor
from portal.auth import token_create
from portal.choices import SCOPE_MIN_ROLE, Role, Scope
from portal.jobs import job_create
from portal.models import Membership, Team
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images.factories import ImageVersionFactory

# Generated cases per operation, each sent by both clients (99 operations x 5 x 2 requests).
# PORTAL_FUZZ_EXAMPLES=100 for a deeper run.
EXAMPLES = int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Random (but derandomized) generation only: schemathesis' coverage phase would add dozens of
# boundary cases per operation on top of max_examples, past the time budget of `make test`.
CONFIG = schemathesis.Config.from_dict(
    {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
)
schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True), config=CONFIG
)
schema.app = get_wsgi_application()


@schemathesis.deserializer("text/yaml")
def _yaml_documents(_ctx: Any, response: Any) -> list[Any]:
    """Manifests are multi-document YAML (as kubectl reads them): a list of documents."""
    return list(yaml.safe_load_all(response.content))


_ROLE_RANK = [Role.VIEWER, Role.DEVELOPER, Role.MAINTAINER, Role.PLATFORM_ADMIN]


def _scopes_for(role: str) -> list[str]:
    rank = _ROLE_RANK.index(role)
    return [s.value for s in Scope if _ROLE_RANK.index(SCOPE_MIN_ROLE[s]) <= rank]


def _keep_connection() -> Any:
    """Django's test client keeps the test's transaction open across requests; so does this.

    The WSGI handler closes the database connection at the end of each request
    (`close_old_connections`), which would end the module's transaction under schemathesis'
    client. Returns the undo.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)

    def undo() -> None:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)

    return undo


def _member(name: str, team: Team, role: str) -> Any:
    user = get_user_model().objects.create_user(username=name)
    Membership.objects.create(team=team, user=user, role=role)
    return user


def _token(team: Team, user: Any, role: str) -> str:
    _, secret = token_create(
        team=team, name=f"fuzz-{user.username}", scopes=_scopes_for(role), actor=Actor(user=user)
    )
    return secret


def _build_world() -> dict[str, Any]:
    platform_team = Team.objects.create(name="platform", is_platform=True)
    service_team = Team.objects.create(name="payments")
    admin = _member("fuzz-admin", platform_team, Role.PLATFORM_ADMIN)
    lead = _member("fuzz-lead", service_team, Role.MAINTAINER)
    runtime = ImageVersionFactory(base_image__name="runtime/debian")
    service = ServiceFactory(name="orders", team=service_team)
    binary = BinaryVersionFactory(service=service)
    environment = EnvironmentFactory(name="staging", namespace="payments-staging")
    deployment = DeploymentFactory(
        service=service, environment=environment, runtime_version=runtime, binary_version=binary
    )
    from deployments.services.releases import release_create

    release = release_create(actor=Actor(user=lead), deployment=deployment)
    job, _ = job_create(kind="images.registry_sync", actor=Actor(user=lead), team=service_team)
    return {
        "tokens": {
            "service": _token(service_team, lead, Role.MAINTAINER),
            "platform": _token(platform_team, admin, Role.PLATFORM_ADMIN),
        },
        "ids": {
            "base-images": runtime.base_image_id,
            "image-versions": runtime.pk,
            "binaries": binary.pk,
            "deployments": deployment.pk,
            "releases": release.pk,
            "jobs": job.pk,
        },
        "names": {
            "service_name": service.name,
            "name": {"services": service.name, "environments": environment.name},
        },
    }


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Any:
    """One object of each kind the path parameters name, and the two clients' tokens: built
    once, in a transaction that the end of the module rolls back (the tests' `db` savepoints
    nest inside it)."""
    undo = _keep_connection()
    try:
        with (
            django_db_blocker.unblock(),
            override_settings(PORTAL_SCAN_REQUIRED=False),
            transaction.atomic(),
        ):
            yield _build_world()
            transaction.set_rollback(True)
    finally:
        undo()


def _resource(path: str) -> str:
    return path.removeprefix("/api/v1/").split("/", 1)[0]


def _aim(case: Any, world: dict[str, Any]) -> None:
    """Point half of the cases (chosen by their content, so runs repeat) at real objects."""
    params = case.path_parameters
    if not params:
        return
    seed = zlib.crc32(repr(sorted((k, str(v)) for k, v in params.items())).encode())
    if seed % 2:
        return
    resource = _resource(case.operation.path)
    for key in params:
        if key == "id" and resource in world["ids"]:
            params[key] = world["ids"][resource]
        elif key == "service_name":
            params[key] = world["names"]["service_name"]
        elif key == "name" and resource in world["names"]["name"]:
            params[key] = world["names"]["name"][resource]


# Each case is sent by both clients. (Parametrized, also, because pytest 9 names an item by its
# callspec: without one, every operation's test would be `test_api_operation`, unlabelled.)
@pytest.mark.parametrize("clients", [("service", "platform")], ids=["service+platform"])
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_operation(case: Any, clients: tuple[str, ...], world: dict[str, Any]) -> None:
    _aim(case, world)
    for client in clients:
        token = world["tokens"][client]
        try:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
        except BaseException as exc:
            exc.add_note(f"sent with the {client} client's token")
            raise


def test_the_fuzzed_schema_is_the_served_one(api: Any) -> None:
    """The test fuzzes the schema `/api/schema/` serves (not another generator's)."""
    served = api.get("/api/schema/?format=json")
    assert served.status_code == 200
    assert set(served.json()["paths"]) == set(schema.raw_schema["paths"])
