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
from portal.compiled import compiled_models, compiled_rows
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

    def counting(build, arguments, iterable):
        calls.append(1)
        return original(build, arguments, iterable)

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


def _readable(pk: int, team_ids: tuple[int, ...] | None) -> QuerySet[Deployment]:
    from deployments.selectors import _deployment_page, teams_readable

    return _deployment_page().filter(teams_readable(team_ids, "service__team"), pk=pk)


def _same(got: Deployment, expected: Deployment) -> None:
    """The same row, related models and annotations, as the queryset built them."""
    assert got.pk == expected.pk and got.mode == expected.mode and got.args == expected.args
    assert got.service.name == expected.service.name
    assert got.service.team.name == expected.service.team.name
    assert got.environment.k8s_version == expected.environment.k8s_version
    assert got.runtime_version.pull_ref == expected.runtime_version.pull_ref
    assert got.latest_release == expected.latest_release
    assert got.in_plans == expected.in_plans
    assert got.get_deferred_fields() == expected.get_deferred_fields()
    assert got._state.adding is False and got._state.db == expected._state.db


def test_models_with_their_relations_and_annotations_are_the_orms(compiles):
    """The deployment page's read: six related tables and two annotations, by key and by the
    reader's teams (None: every team's; a tuple: those teams', planned by its length)."""
    first = DeploymentFactory(service=ServiceFactory(team=Team.objects.create(name="a")))
    second = DeploymentFactory(service=ServiceFactory(team=Team.objects.create(name="b")))
    models = compiled_models(_readable)
    own = first.service.team_id
    for pk, teams in [
        (first.pk, None),
        (second.pk, None),
        (first.pk, (own,)),
        (second.pk, (own,)),  # another team's: none
        (second.pk, (own, second.service.team_id)),
        (first.pk, ()),  # no team: no rows (never compiled: it has none whatever the key)
    ]:
        with CaptureQueriesContext(connection) as queries:
            got = models(pk, teams)
        expected = list(_readable(pk, teams))
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            _same(a, b)
        assert len(queries.captured_queries) <= 1
        with CaptureQueriesContext(connection) as queries:
            for deployment in got:
                _ = deployment.service.team.name, deployment.runtime_version.pull_ref
        assert queries.captured_queries == []  # the relations came with the row
    assert models(second.pk, (own,)) == []
    assert len(compiles) == 4  # None, one team, two teams, no team


def test_the_pages_selectors_answer_as_before(service_team, developer):
    """`service_page_get` and `deployment_page_get` read what they read before, and nothing
    of another team's."""
    from django.http import Http404

    from deployments.selectors import deployment_page_get, service_page_get
    from portal.actors import Actor

    mine = DeploymentFactory(service=ServiceFactory(name="mine", team=service_team))
    other = Team.objects.create(name="other")
    theirs = DeploymentFactory(service=ServiceFactory(name="theirs", team=other))
    actor = Actor(user=developer)
    assert deployment_page_get(mine.pk, actor).service.name == "mine"
    assert deployment_page_get(theirs.pk, actor) is None
    assert service_page_get("mine", actor=actor).team == service_team
    with pytest.raises(Http404):
        service_page_get("theirs", actor=actor)
    from deployments.selectors import BadServiceName

    with pytest.raises(BadServiceName):
        service_page_get("../x", actor=actor)


def test_a_tuple_of_other_elements_is_not_run_with_the_ids_plan(compiles):
    """A plan is kept by the types of a tuple's elements, not its length alone: text in a
    tuple (no marker for it) is built on every call, never run with the ids' SQL."""
    alpha, beta = Team.objects.create(name="alpha"), Team.objects.create(name="beta")

    @compiled_rows
    def teams(keys: tuple[Any, ...]) -> QuerySet[Any]:
        field = "name__in" if keys and type(keys[0]) is str else "pk__in"
        return Team.objects.filter(**{field: keys}).order_by("name").values("name")

    assert [r["name"] for r in teams((alpha.pk, beta.pk))] == ["alpha", "beta"]
    assert [r["name"] for r in teams(("beta", "gamma"))] == ["beta"]
    assert [r["name"] for r in teams((beta.pk, alpha.pk))] == ["alpha", "beta"]
    assert len(compiles) == 2  # the ids' plan, and the text tuple's (none: built each call)
