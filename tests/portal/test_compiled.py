"""Reads compiled once (`portal.compiled.compiled_rows`) give the rows the ORM gives, for
every call's arguments, and fall back to the queryset wherever the markers are not found."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment
from portal import compiled
from portal.compiled import compiled_rows
from portal.models import Membership, Team
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory

pytestmark = pytest.mark.django_db

COLUMNS = ("id", "env", "args", "created_at", "service__name", "binary_version__version")


def _deployments(service_id: int) -> QuerySet[Any]:
    return Deployment.objects.filter(service_id=service_id).order_by("id").values(*COLUMNS)


@pytest.fixture
def compiles(monkeypatch):
    """How many times a plan was compiled."""
    calls: list[int] = []
    original = compiled._compile

    def counting(build, arguments):
        calls.append(1)
        return original(build, arguments)

    monkeypatch.setattr(compiled, "_compile", counting)
    return calls


def test_the_rows_are_the_orms_for_every_key_and_compiled_once(compiles):
    first, second = ServiceFactory(), ServiceFactory()
    for index, service in enumerate((first, second, second)):
        DeploymentFactory(
            service=service,
            environment=EnvironmentFactory(name=f"env-{index}"),
            env=[{"name": "A", "value": "ü"}],
            args=["--x"],
        )
    rows = compiled_rows(_deployments)
    for service in (first, second, first):
        with CaptureQueriesContext(connection) as queries:
            got = rows(service.pk)
        assert got == list(_deployments(service.pk)) and got
        assert len(queries.captured_queries) == 1
    assert got[0]["env"] == [{"name": "A", "value": "ü"}]  # the JSON and time converters ran
    assert got[0]["created_at"].tzinfo is not None
    assert rows(service_id=10**6) == []  # no such service: no rows, same plan
    assert compiles == [1]


def test_text_arguments_and_several_of_them(compiles):
    team = Team.objects.create(name="orders")
    ServiceFactory(name="orders-api", team=team)
    ServiceFactory(name="orders-web", team=team)

    @compiled_rows
    def named(team_name: str, name: str) -> QuerySet[Any]:
        from deployments.models import Service

        return Service.objects.filter(team__name=team_name, name=name).values("id", "name")

    assert [r["name"] for r in named("orders", "orders-web")] == ["orders-web"]
    assert [r["name"] for r in named("orders", name="orders-api")] == ["orders-api"]
    assert named("nobody", "orders-api") == []
    assert compiles == [1]


@pytest.mark.parametrize(
    "build",
    [
        # a lookup that transforms the argument: its marker is not among the parameters
        lambda name: Team.objects.filter(name__icontains=name).values("name"),
        # a slice: inlined as LIMIT, not a parameter
        lambda size: Team.objects.order_by("name").values("name")[:size],
        # no rows whatever the argument: nothing to compile
        lambda size: Team.objects.filter(pk__in=[]).values("name")[:size],
        # not values() rows
        lambda name: Team.objects.filter(name=name),
    ],
    ids=["transformed", "inlined", "empty", "models"],
)
def test_what_cannot_be_compiled_is_built_on_every_call(build):
    for name in ("alpha", "beta", "gamma"):
        Team.objects.create(name=name)
    rows = compiled_rows(build)
    argument = "a" if "name" in build.__code__.co_varnames else 2
    expected = list(build(argument))
    assert rows(argument) == expected
    assert rows(argument) == expected  # the fallback kept: still right


def test_an_argument_of_another_type_is_built_every_call():
    service = ServiceFactory()
    DeploymentFactory(service=service)
    rows = compiled_rows(_deployments)
    assert rows(service) == list(_deployments(service))  # a model: no marker for it
    assert rows(service.pk) == list(_deployments(service.pk))


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="an in-memory SQLite database is one thread's"
)
def test_each_thread_compiles_its_own(compiles):
    service = ServiceFactory()
    DeploymentFactory(service=service)
    rows = compiled_rows(_deployments)
    assert rows(service.pk)
    seen: list[Any] = []

    def other_thread() -> None:  # its own connection: it sees no rows of this test's
        try:
            seen.append(rows(service.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert len(compiles) == 2 and len(seen) == 1


def test_the_session_users_memberships_come_from_compiled_rows(client, django_user_model):
    """The middleware's memberships are the ones the prefetch gave: models of the rows."""
    from portal.actors import Actor

    user = django_user_model.objects.create_user("dev", password="x")
    team = Team.objects.create(name="payments")
    Membership.objects.create(team=team, user=user, role="developer")
    client.force_login(user)
    assert client.get("/jobs/").status_code == 200
    request = client.get("/jobs/").wsgi_request
    memberships = list(request.user.memberships.all())
    assert [(m.team_id, m.user_id, m.role) for m in memberships] == [
        (team.pk, user.pk, "developer")
    ]
    assert not memberships[0]._state.adding  # as loaded from the database
    assert Actor(user=request.user).role_in(team) == "developer"
