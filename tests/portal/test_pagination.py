"""Numbered API pages (`portal.api.pagination.PagePagination`): a page reads one row more to
know whether another follows, so `next` never depends on the count; the count is exact for a
small list (and taken from the last page without a `COUNT(*)`), the planner's estimate for a
big one, flagged `count_estimated`."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.api import pagination
from tests.deployments.test_flat_lists import READ_ALL, world  # noqa: F401 - the fixture (usefixtures)

pytestmark = pytest.mark.django_db
# Only PostgreSQL's planner is asked for an estimate; other databases are always counted.
POSTGRESQL = pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner")

URL = "/api/v1/deployments/?page_size={size}"  # 24 deployments (12 services × 2)


def _follow(client, url: str) -> list[dict]:
    bodies = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        bodies.append(response.json())
        url = bodies[-1]["next"]
    return bodies


def _counts(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if "COUNT(" in q["sql"] or q["sql"].startswith("EXPLAIN")
    ]


@pytest.mark.usefixtures("world")
def test_a_list_that_ends_on_its_page_is_counted_by_it(token_client, service_team):
    client = token_client(service_team, READ_ALL)
    with CaptureQueriesContext(connection) as captured:
        body = client.get(URL.format(size=24)).json()
    assert body["count"] == 24 and body["count_estimated"] is False
    assert body["next"] is None and len(body["results"]) == 24
    assert _counts(captured) == []  # the page said how many there are
    last = client.get(URL.format(size=10) + "&page=3").json()
    assert last["count"] == 24 and last["next"] is None and len(last["results"]) == 4


@pytest.mark.usefixtures("world")
def test_a_small_list_with_more_pages_is_counted_exactly(token_client, service_team):
    client = token_client(service_team, READ_ALL)
    bodies = _follow(client, URL.format(size=10))
    assert [len(b["results"]) for b in bodies] == [10, 10, 4]
    assert {b["count"] for b in bodies} == {24}
    assert not any(b["count_estimated"] for b in bodies)
    ids = [row["id"] for b in bodies for row in b["results"]]
    assert len(ids) == len(set(ids)) == 24
    exact = client.get(URL.format(size=12) + "&page=2").json()
    assert exact["next"] is None and len(exact["results"]) == 12  # no empty page 3 offered


@pytest.fixture
def big(monkeypatch):
    """Every list counts as big (`ESTIMATE_ABOVE` 0) in a process that knows none yet."""
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 0)
    monkeypatch.setattr(pagination, "_BIG", {})


@POSTGRESQL
@pytest.mark.usefixtures("world")
def test_a_big_list_shows_the_estimate_and_every_row_still_comes(
    token_client, service_team, big, monkeypatch
):
    """Above `ESTIMATE_ABOVE` the count is the planner's, once the list was counted so big;
    the pages do not trust it: an estimate far below the rows still gives every row."""
    monkeypatch.setattr(pagination, "planned_rows", lambda db, sql, params: 3)
    client = token_client(service_team, READ_ALL)
    first = client.get(URL.format(size=5)).json()
    assert first["count"] == 24 and first["count_estimated"] is False  # counted: it is big
    bodies = _follow(client, URL.format(size=5))
    assert len(bodies) == 5
    assert [b["count"] for b in bodies[:-1]] == [3, 3, 3, 3]
    assert all(b["count_estimated"] for b in bodies[:-1])
    assert bodies[-1]["count"] == 24 and bodies[-1]["count_estimated"] is False
    ids = [row["id"] for b in bodies for row in b["results"]]
    assert len(ids) == len(set(ids)) == 24
    filtered = client.get(URL.format(size=5) + "&environment=prod").json()
    assert filtered["count"] == 12 and filtered["count_estimated"] is False  # another list


@POSTGRESQL
@pytest.mark.usefixtures("world")
def test_a_list_the_planner_sees_small_is_counted_again(
    token_client, service_team, big, monkeypatch
):
    monkeypatch.setattr(pagination, "planned_rows", lambda db, sql, params: 3)
    client = token_client(service_team, READ_ALL)
    client.get(URL.format(size=5))
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 10)  # the planner's 3 is not above it
    with CaptureQueriesContext(connection) as captured:
        body = client.get(URL.format(size=5)).json()
    assert body["count"] == 24 and body["count_estimated"] is False
    assert sum("COUNT(" in sql for sql in _counts(captured)) == 1
    assert pagination._BIG and all(pagination._BIG.values())  # 24 > 10: still big


@POSTGRESQL
@pytest.mark.usefixtures("world")
def test_the_estimate_is_postgresqls_plan_not_a_count(token_client, service_team, big):
    client = token_client(service_team, READ_ALL)
    client.get(URL.format(size=5))
    with CaptureQueriesContext(connection) as captured:
        body = client.get(URL.format(size=5)).json()
    counted = _counts(captured)
    assert len(counted) == 1 and counted[0].startswith("EXPLAIN")
    assert body["count_estimated"] is True and body["count"] >= 1
    assert len(body["results"]) == 5 and body["next"]


@pytest.mark.usefixtures("world")
def test_a_small_list_is_counted_in_one_query(token_client, service_team):
    client = token_client(service_team, READ_ALL)
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            body = client.get(URL.format(size=5)).json()
        assert body["count"] == 24 and body["count_estimated"] is False
        assert len(_counts(captured)) == 1 and "COUNT(" in _counts(captured)[0]


@pytest.mark.parametrize(
    ("page", "why"),
    [
        ("0", "less than 1"),
        ("-1", "less than 1"),
        ("abc", "not an integer"),
        ("1.5", "not an integer"),
        ("9", "contains no results"),
    ],
)
@pytest.mark.usefixtures("world")
def test_a_page_that_is_no_page_is_a_404_that_says_how_to_page(
    token_client, service_team, page, why
):
    client = token_client(service_team, READ_ALL)
    response = client.get(URL.format(size=10) + f"&page={page}")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert body["detail"].startswith(f"Invalid page {page}: ") and why in body["detail"]
    assert "follow `next` from the first page" in body["detail"]


@pytest.mark.usefixtures("world")
def test_the_invalid_page_message_follows_the_language(token_client, service_team):
    from tests.i18n_support import compile_catalog

    compile_catalog()
    client = token_client(service_team, READ_ALL)
    detail = client.get(URL.format(size=10) + "&page=9", HTTP_ACCEPT_LANGUAGE="zh-hans").json()[
        "detail"
    ]
    assert detail.startswith("无效的页码 9：") and "`next`" in detail


def test_an_empty_list_is_page_one_with_nothing(token_client, service_team):
    client = token_client(service_team, READ_ALL)
    body = client.get(URL.format(size=10)).json()
    assert body == {
        "count": 0,
        "count_estimated": False,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_the_schema_describes_the_estimate_flag(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    page = schema["components"]["schemas"]["PaginatedDeploymentList"]
    assert page["properties"]["count_estimated"]["type"] == "boolean"
    assert {"count", "count_estimated", "results"} <= set(page["required"])


@pytest.mark.usefixtures("world")
def test_the_browsable_api_shows_the_page_links(token_client, service_team):
    client = token_client(service_team, READ_ALL)
    page = client.get(URL.format(size=5) + "&page=2", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'class="pagination"' in text and "page=3" in text
    single = client.get(URL.format(size=50), HTTP_ACCEPT="text/html").content.decode()
    assert 'class="pagination"' not in single


def test_a_tokens_browsable_page_is_no_server_error(token_client, service_team, platform_team):
    """The browsable API renders the portal's layout, whose navigation asks whether the
    reader is a platform admin: for a token that was a 500 (its user is no Django user)."""
    for team, admin in ((service_team, False), (platform_team, True)):
        client = token_client(team, READ_ALL)
        page = client.get("/api/v1/environments/", HTTP_ACCEPT="text/html")
        assert page.status_code == 200
        assert page.context["is_platform_admin"] is admin


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize("size", ["abc", "0", "-3", "1.5", ""])
def test_not_a_page_size_is_a_400(token_client, service_team, size):
    """As on the keyset lists: DRF served the default page for these, and a typo in a
    client went unnoticed."""
    client = token_client(service_team, READ_ALL)
    response = client.get(URL.format(size=size))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"]["page_size"] in {
        "page_size must be a whole number.",
        "page_size must be at least 1.",
    }
    assert body["detail"] == f"page_size: {body['errors']['page_size']}"


@pytest.mark.usefixtures("world")
def test_a_page_size_above_the_most_is_the_most(token_client, service_team, monkeypatch):
    monkeypatch.setattr(pagination.PagePagination, "max_page_size", 10)
    client = token_client(service_team, READ_ALL)
    body = client.get(URL.format(size=500)).json()
    assert len(body["results"]) == 10 and "page_size=500" in body["next"]
