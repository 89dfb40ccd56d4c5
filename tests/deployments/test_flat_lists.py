"""The lists stay flat at company size: constant queries at any page size, no GROUP BY over
the whole tables, keyset pages of releases and binaries, a paged deployment page whose diff
form takes numbers (shared/reviews/scale-2026-12.md)."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import BinaryVersion, Deployment, Release, actor_label
from portal.choices import Role
from portal.models import ApiToken
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db

READ_ALL = ["services:read", "binaries:read", "deployments:read", "images:read"]


def _releases(deployment: Deployment, n: int) -> list[Release]:
    binary = deployment.binary_version
    return Release.objects.bulk_create(
        Release(
            deployment=deployment,
            number=i,
            strategy="hostPath",
            binary_version=binary,
            runtime_version=deployment.runtime_version,
            binary_sha256=binary.sha256,
            base_digest=deployment.runtime_version.digest,
            manifest_yaml=f"kind: Deployment # release {i}\n" + "x: y\n" * 500,
            k8s_version="1.33",
        )
        for i in range(1, n + 1)
    )


@pytest.fixture
def world(service_team):
    runtime = ImageVersionFactory(recipe="FROM scratch\n" * 2000)
    prod, dev = EnvironmentFactory(name="prod"), EnvironmentFactory(name="dev", namespace="d")
    deployments = []
    for i in range(12):
        service = ServiceFactory(name=f"svc-{i:02}", team=service_team)
        for n in range(3):
            BinaryVersionFactory(service=service, version=f"1.{n}.0")
        for environment in (prod, dev):
            deployment = DeploymentFactory(
                service=service,
                environment=environment,
                runtime_version=runtime,
                binary_version=service.binary_versions.first(),
            )
            _releases(deployment, 3)
            deployments.append(deployment)
    return {"deployments": deployments, "runtime": runtime}


def _main_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "portal_apitoken" not in q["sql"]]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/services/",
        "/api/v1/deployments/",
        "/api/v1/environments/",
        "/api/v1/binaries/",
        "/api/v1/releases/",
        "/api/v1/base-images/",
        "/api/v1/image-versions/",
    ],
)
def test_api_lists_constant_queries_and_no_group_by(
    token_client, service_team, world, django_assert_max_num_queries, url
):
    client = token_client(service_team, READ_ALL)
    client.get(url)
    for size in (2, 20):
        with django_assert_max_num_queries(4), CaptureQueriesContext(connection) as captured:
            response = client.get(url, {"page_size": size})
        assert response.status_code == 200, response.content
        assert len(response.json()["results"]) == size or not response.json()["next"]
        for sql in _main_queries(captured):
            assert "GROUP BY" not in sql, sql  # per-row subqueries, never the whole join
            assert '"recipe"' not in sql or url == "/api/v1/image-versions/", sql


@pytest.mark.parametrize("url", ["/api/v1/releases/", "/api/v1/binaries/"])
def test_api_keyset_walks_are_complete(token_client, service_team, world, url):
    client = token_client(service_team, READ_ALL)
    response = client.get(url, {"page_size": 7})
    seen: list[int] = []
    while True:
        body = response.json()
        assert "count" not in body
        seen += [r["id"] for r in body["results"]]
        if not body["next"]:
            break
        response = client.get(body["next"])
    model = Release if "releases" in url else BinaryVersion
    assert len(seen) == len(set(seen)) == model.objects.count()
    if model is Release:
        expected = model.objects.order_by("-id")
    else:
        expected = model.objects.order_by("-created_at", "-id")
    assert seen == [r.pk for r in expected]
    assert client.get(url, {"page": 2}).status_code == 400


def test_deployment_releases_action_is_keyset(token_client, service_team, world):
    deployment = world["deployments"][0]
    _releases_more = Release.objects.filter(deployment=deployment).count()
    client = token_client(service_team, READ_ALL)
    body = client.get(f"/api/v1/deployments/{deployment.pk}/releases/", {"page_size": 2}).json()
    assert [r["number"] for r in body["results"]] == [3, 2] and body["next"]
    rest = client.get(body["next"]).json()
    assert [r["number"] for r in rest["results"]] == [1] and rest["previous"]
    assert _releases_more == 3


def test_deployment_page_pages_its_history_with_a_number_diff(
    client, make_user, service_team, world, django_assert_max_num_queries
):
    deployment = world["deployments"][0]
    _releases_extra = Release.objects.bulk_create(
        Release(
            deployment=deployment,
            number=n,
            strategy="hostPath",
            binary_version=deployment.binary_version,
            runtime_version=deployment.runtime_version,
            binary_sha256="0" * 64,
            base_digest=deployment.runtime_version.digest,
            manifest_yaml=f"n: {n}\n",
            k8s_version="1.33",
        )
        for n in range(4, 61)
    )
    assert len(_releases_extra) == 57
    client.force_login(make_user("dora", service_team, Role.DEVELOPER))
    url = f"/deployments/{deployment.pk}/"
    client.get(url)
    with django_assert_max_num_queries(16):
        page = client.get(url).content.decode()
    history = page[page.index('id="release-table"') :]
    assert history.count("Roll back to #") == 24 and "(live)" in history  # 25 a page
    assert '<select name="a"' not in page and 'type="number" name="a"' in page
    assert 'value="59"' in page and 'value="60"' in page  # defaults: the live one and before
    assert page.count("<option value=") < 60  # the picker offers this page, not every release
    older = re.search(r'href="\?([^"]*cursor=[^"]+)" rel="next"', page)
    assert older
    with django_assert_max_num_queries(16):
        second = client.get(url + "?" + html.unescape(older[1])).content.decode()
    assert ">#35</a>" in second and ">#60</a>" not in second and "(live)" not in second
    # the diff loads only the two releases it compares
    with CaptureQueriesContext(connection) as captured:
        diff = client.get(f"/deployments/{deployment.pk}/diff/", {"a": 4, "b": 60})
    assert diff.status_code == 200 and "+n: 60" in diff.content.decode()
    release_reads = [q["sql"] for q in captured.captured_queries if '"manifest_yaml"' in q["sql"]]
    assert release_reads and all("IN (4, 60)" in sql for sql in release_reads)
    missing = client.get(f"/deployments/{deployment.pk}/diff/", {"a": 4, "b": 999})
    assert "no release #999" in missing.content.decode()


@pytest.mark.parametrize("size", [10, 100])
def test_ui_lists_constant_queries(client, admin_user, world, django_assert_max_num_queries, size):
    client.force_login(admin_user)
    service = world["deployments"][0].service
    for url in ("/services/", f"/services/{service.name}/", "/base-images/"):
        client.get(url)
        with django_assert_max_num_queries(14), CaptureQueriesContext(connection) as captured:
            assert client.get(url, {"page_size": size}).status_code == 200
        assert not any("GROUP BY" in q["sql"] for q in captured.captured_queries), url


def test_list_pages_count_their_table_alone(client, admin_user, world):
    """The services list and the catalog read their rows as values(), which join what the
    rows show; their counts join nothing (portal.querysets.page_values)."""
    client.force_login(admin_user)
    for url in ("/services/", "/base-images/"):
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        counts = [q["sql"] for q in captured.captured_queries if "COUNT(*)" in q["sql"]]
        assert len(counts) == 1 and " JOIN " not in counts[0], (url, counts)


def test_service_and_deployment_pages_read_what_they_show(client, admin_user, world):
    """Session, user and memberships, then the page's own: a service page with no built
    binary and no open policy exception asks for neither, a deployment page in no plan
    for no plan items."""
    client.force_login(admin_user)
    deployment = world["deployments"][0]
    expected = {f"/services/{deployment.service.name}/": 6, f"/deployments/{deployment.pk}/": 5}
    for url, count in expected.items():
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        assert len(captured.captured_queries) == count, [
            q["sql"][:80] for q in captured.captured_queries
        ]


@pytest.mark.parametrize(
    ("token", "user", "expected"),
    [
        ("ci", "dora", "token:ci"),
        (None, "dora", "dora"),
        (None, None, "system"),
        (None, "", "system"),
    ],
)
def test_actor_label_is_what_the_models_say(token, user, expected):
    """The pages' values() rows and the models name who did it the same way."""
    assert actor_label(token, user, nobody="system") == expected
    release = Release(
        created_by_token=ApiToken(name=token) if token else None,
        created_by=User(username=user) if user else None,
    )
    assert release.created_by_repr == expected
