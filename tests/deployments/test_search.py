"""The navigation's search (issue 11): every group, digest and sha256 prefixes, scoping to
the user's teams and the token's scopes, bad input, and a query count that stays flat."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from deployments.models import BinaryVersion
from portal.choices import Role
from tests.deployments.dashboard_world import build_world, grow

pytestmark = pytest.mark.django_db

API = "/api/v1/search/"


@pytest.fixture
def world(service_team, platform_team):
    return build_world(service_team)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _groups(body: dict) -> dict[str, list[str]]:
    return {g["key"]: [i["title"] for i in g["items"]] for g in body["groups"]}


def test_names_match_images_services_and_requests(world, admin_user):
    body = _api(admin_user).get(API, {"q": "ledger"}).json()
    assert _groups(body)["services"] == ["ledger"]
    body = _api(admin_user).get(API, {"q": "runtime/deb"}).json()
    assert _groups(body)["images"] == ["runtime/debian"]
    assert "versions" not in _groups(body)  # not a hex prefix: no digest group at all


def test_digest_and_sha256_prefixes(world, admin_user):
    body = _api(admin_user).get(API, {"q": "sha256:ab12"}).json()
    groups = _groups(body)
    assert groups["versions"] == ["runtime/debian:12.2"]
    assert body["groups"][1]["items"][0]["url"] == f"/image-versions/{world.v_debian.pk}/"
    binary = BinaryVersion.objects.get(service__name="indexer")
    body = _api(admin_user).get(API, {"q": binary.sha256[:10].upper()}).json()
    found = [g for g in body["groups"] if g["key"] == "binaries"][0]["items"]
    assert [i["sha256"] for i in found] == [binary.sha256]
    assert found[0]["url"] == f"/services/indexer/?q={binary.sha256}"
    # Three hex characters are too few to tell anything: no digest or sha256 group.
    short = _groups(_api(admin_user).get(API, {"q": "ab1"}).json())
    assert {"versions", "binaries"}.isdisjoint(short)


def test_requests_by_number(world, admin_user, service_team):
    from tests.deployments.test_dashboard import _request

    made = _request(service_team, "rc1", "submitted")
    body = _api(admin_user).get(API, {"q": f"#{made.pk}"}).json()
    assert _groups(body)["requests"] == [f"#{made.pk} runtime/debian:rc1"]


def test_scoped_to_the_users_teams(world, developer, make_user, service_team):
    from tests.deployments.test_dashboard import _request

    mine = _request(service_team, "mine", "draft")
    indexer = BinaryVersion.objects.get(service__name="indexer")
    dev = _api(developer)
    assert _groups(dev.get(API, {"q": "indexer"}).json())["services"] == []
    assert _groups(dev.get(API, {"q": indexer.sha256[:12]}).json())["binaries"] == []
    assert _groups(dev.get(API, {"q": "mine"}).json())["requests"] == [
        f"#{mine.pk} runtime/debian:mine"
    ]
    other = _api(make_user("sam-search", world.search, Role.DEVELOPER))
    assert _groups(other.get(API, {"q": "indexer"}).json())["services"] == ["indexer"]
    assert _groups(other.get(API, {"q": "mine"}).json())["requests"] == []


def test_a_token_sees_only_the_groups_of_its_scopes(world, token_client, service_team):
    client = token_client(service_team, ["images:read"])
    body = client.get(API, {"q": "orders"}).json()
    assert {g["key"] for g in body["groups"]} == {"images", "requests"}
    client = token_client(service_team, ["services:read"])
    assert _groups(client.get(API, {"q": "orders"}).json()) == {"services": ["orders"]}


@pytest.mark.parametrize(
    ("params", "message"),
    [({}, "at least 2"), ({"q": " a "}, "at least 2"), ({"q": "x" * 201}, "at most 200")],
)
def test_bad_queries_are_400(world, admin_user, params, message):
    response = _api(admin_user).get(API, params)
    assert response.status_code == 400 and message in str(response.json())
    page = Client()
    page.force_login(admin_user)
    if params.get("q", "").strip():
        response = page.get("/search/", params)
        assert response.status_code == 400 and message in response.content.decode()


def test_unauthenticated_is_401_and_login(world):
    assert APIClient().get(API, {"q": "orders"}).status_code == 401
    assert Client().get("/search/", {"q": "orders"})["Location"].startswith("/login/")


def test_results_page_lists_groups_with_links(world, admin_user):
    client = Client()
    client.force_login(admin_user)
    page = client.get("/search/", {"q": "orders"}).content.decode()
    assert 'id="results-services"' in page and 'href="/services/orders/"' in page
    assert "No results" not in page
    empty = client.get("/search/", {"q": "zzzz-nothing"}).content.decode()
    assert 'id="no-results"' in empty
    assert client.get("/search/").status_code == 200  # the empty box, no error


def test_query_count_is_flat(world, admin_user, django_assert_max_num_queries):
    client = _api(admin_user)
    with django_assert_max_num_queries(8) as small:
        client.get(API, {"q": "ab12"})
    grow(world, 30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = client.get(API, {"q": "extra"}).json()
    assert len(_groups(body)["services"]) == 10
    assert [g for g in body["groups"] if g["key"] == "services"][0]["more"] is True
