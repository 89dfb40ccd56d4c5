"""The whole API fuzzed from its own OpenAPI schema (schemathesis), as two kinds of client.

Every operation of `/api/schema/` gets a bounded number of generated requests (hypothesis,
derandomized, so a run is reproducible), sent through the real WSGI application with the
token of a service team's maintainer and of a platform admin, both holding every scope their
role allows. Each response must not be a server error and must be described by the schema:
its status code, its content type and its body (the error responses too: one `Error` shape,
portal/schema.py). Path parameters name a real object of a small world half of the time, so
the fuzzer reaches the object's handlers and not only the 404.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import pytest
import schemathesis
import yaml
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.actors import Actor
from portal.choices import SCOPE_MIN_ROLE, Role, Scope
from portal.jobs import job_create
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images.factories import ImageVersionFactory

# Generated requests per operation and client (83 operations x 2 clients): about 3 minutes on a
# loaded 2-core machine. PORTAL_FUZZ_EXAMPLES=100 for a deeper run.
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


@pytest.fixture
def _keep_connection() -> Any:
    """Django's test client keeps the test's transaction open across requests; so does this.

    The WSGI handler closes the database connection at the end of each request
    (`close_old_connections`), which would end the test transaction under schemathesis' client.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def world(
    _keep_connection: None, platform_team: Any, service_team: Any, make_user: Any, make_token: Any
) -> dict[str, Any]:
    """One object of each kind the path parameters name, and the two clients' tokens."""
    admin = make_user("fuzz-admin", platform_team, Role.PLATFORM_ADMIN)
    lead = make_user("fuzz-lead", service_team, Role.MAINTAINER)
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
            "service": make_token(service_team, _scopes_for(Role.MAINTAINER), user=lead),
            "platform": make_token(platform_team, _scopes_for(Role.PLATFORM_ADMIN), user=admin),
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


@pytest.mark.parametrize("client", ["service", "platform"])
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
def test_api_operation(case: Any, client: str, world: dict[str, Any]) -> None:
    _aim(case, world)
    token = world["tokens"][client]
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


def test_the_fuzzed_schema_is_the_served_one(api: Any) -> None:
    """The test fuzzes the schema `/api/schema/` serves (not another generator's)."""
    served = api.get("/api/schema/?format=json")
    assert served.status_code == 200
    assert set(served.json()["paths"]) == set(schema.raw_schema["paths"])
