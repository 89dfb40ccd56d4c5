"""The dashboard (issue 11): its numbers, its links (UI and API filters), its scoping, the
review badge, and a query count that does not grow with the rows."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import Client

from deployments.selectors.dashboard import dashboard_for_actor
from portal.actors import Actor
from portal.choices import Role
from tests.deployments.dashboard_world import MB, build_world, forget_daily_counts, grow

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(service_team, platform_team):
    return build_world(service_team)


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _by_team(dashboard) -> dict[str, dict]:
    return {row["team"]: row for row in dashboard.risk_by_team}


def test_admin_sees_every_team_at_risk(world, admin_user):
    dashboard = dashboard_for_actor(Actor(user=admin_user))
    teams = _by_team(dashboard)
    assert teams["payments"] == {
        "team": "payments",
        "total": 5,
        "deprecated": 1,
        "eol": 1,
        "superseded": 0,
        "revoked": 1,
        "vulnerable": 2,
    }
    assert teams["search"]["total"] == 1 and teams["search"]["superseded"] == 1
    assert dashboard.risk_totals["total"] == 6
    statuses = {row["status"]: row["count"] for row in dashboard.images_by_status}
    assert statuses == {"approved": 2, "deprecated": 1, "restricted": 1, "blocked": 0}
    assert [(e["name"], e["days_left"], e["deployments"]) for e in dashboard.eol_soon] == [
        ("runtime/ubuntu", 30, 1)
    ]


def test_a_developer_sees_only_their_team(world, developer, make_user):
    dashboard = dashboard_for_actor(Actor(user=developer))
    assert list(_by_team(dashboard)) == ["payments"]
    other = make_user("sam-search", world.search, Role.DEVELOPER)
    dashboard = dashboard_for_actor(Actor(user=other))
    assert list(_by_team(dashboard)) == ["search"]
    assert dashboard.eol_soon[0]["deployments"] == 0  # ubuntu is payments' only
    assert [s["name"] for s in dashboard.chart["series"]] == ["runtime/debian"]
    debian = dashboard.chart["series"][0]["data"]
    assert (debian[0], debian[-7], debian[-6], debian[-1]) == (0, 0, 1, 1)  # indexer: 5 days ago
    mine = dashboard_for_actor(Actor(user=developer)).chart["series"]
    assert {s["name"]: (s["data"][0], s["data"][-1]) for s in mine} == {
        "runtime/centos": (2, 1),
        "runtime/debian": (0, 1),
    }


def test_pull_footprint_per_environment(world, admin_user):
    rows = {r["environment"]: r for r in dashboard_for_actor(Actor(user=admin_user)).pull_footprint}
    prod = rows["prod"]
    # debian 12.2 (30 MB, twice), centos 7 (70 MB), debian 12.1 (29 MB); binaries 5 MB each.
    assert (prod["volume_images"], prod["volume_bytes"]) == (3, 129 * MB)
    assert (prod["image_images"], prod["image_bytes"]) == (4, 129 * MB + 4 * 5 * MB)
    assert prod["image_rebuilds_per_fix"] == 4 and prod["volume_deployments"] == 3
    dev = rows["dev"]
    assert (dev["volume_images"], dev["volume_bytes"], dev["unknown_sizes"]) == (2, 28 * MB, 1)
    assert dev["image_bytes"] == 28 * MB + 2 * 5 * MB


def test_chart_replays_releases_over_the_window(world, admin_user):
    chart = dashboard_for_actor(Actor(user=admin_user)).chart
    assert len(chart["labels"]) == 90
    series = {s["name"]: s["data"] for s in chart["series"]}
    assert set(series) == {"runtime/centos", "runtime/debian"}
    # Before the window: orders and ledger on centos; 10 days ago orders moved to debian;
    # 5 days ago indexer started on debian. Dev deployments have no release: nowhere.
    assert series["runtime/centos"][0] == 2 and series["runtime/debian"][0] == 0
    assert series["runtime/centos"][-1] == 1 and series["runtime/debian"][-1] == 2
    assert series["runtime/debian"][-8] == 1  # between the move and indexer's first release


def test_home_page_links_open_the_filtered_lists(world, admin_user):
    client = _login(admin_user)
    page = client.get("/").content.decode()
    links = dict(
        re.findall(r'data-risk="(\w+)" href="(/deployments/\?team=payments&amp;[^"]+)"', page)
    )
    assert set(links) == {"deprecated", "eol", "revoked", "vulnerable"}
    expected = {
        "deprecated": {"ledger"},
        "eol": {"ledger"},
        "revoked": {"ledger"},
        "vulnerable": {"orders", "payroll"},
    }
    api = _api(admin_user)
    for risk, link in links.items():
        url = link.replace("&amp;", "&")
        listed = client.get(url)
        assert listed.status_code == 200
        names = set(re.findall(r'/deployments/\d+/">(\w+)</a>', listed.content.decode()))
        assert names == expected[risk], risk
        query = url.split("?", 1)[1]
        body = api.get(f"/api/v1/deployments/?{query}").json()
        assert {d["service"] for d in body["results"]} == expected[risk], risk


def _api(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def test_eol_within_and_base_image_filters(world, admin_user):
    api = _api(admin_user)
    body = api.get("/api/v1/deployments/?eol_within=90").json()
    assert [(d["service"], d["environment"]) for d in body["results"]] == [("orders", "dev")]
    body = api.get("/api/v1/deployments/?superseded=1&version_state=superseded").json()
    assert [d["service"] for d in body["results"]] == ["indexer"]
    body = api.get("/api/v1/base-images/?eol_within=90").json()
    assert [b["name"] for b in body["results"]] == ["runtime/ubuntu"]
    body = api.get("/api/v1/deployments/?base_image=runtime/centos&environment=prod").json()
    assert [d["service"] for d in body["results"]] == ["ledger"]
    catalog = _login(admin_user).get("/base-images/?eol_within=90").content.decode()
    assert "runtime/ubuntu" in catalog and "runtime/centos" not in catalog


@pytest.mark.parametrize(
    "query", ["eol_within=soon", "eol_within=-1", "eol_within=99999", "base_status=gone"]
)
def test_bad_filters_are_400_in_ui_and_api(world, admin_user, query):
    response = _login(admin_user).get(f"/deployments/?{query}")
    assert response.status_code == 400
    assert "These filters are not valid" in response.content.decode()
    assert _api(admin_user).get(f"/api/v1/deployments/?{query}").status_code == 400


def test_deployment_list_is_scoped(world, developer):
    page = _login(developer).get("/deployments/").content.decode()
    assert "orders" in page and "indexer" not in page
    page = _login(developer).get("/deployments/?team=search").content.decode()
    assert "No deployment matches these filters" in page


def _request(team, tag: str, state: str):
    from django.utils import timezone

    from images.models import ImageRequest

    return ImageRequest.objects.create(
        name="runtime/debian",
        tag=tag,
        kind="runtime",
        os_family="debian",
        os_version="12",
        recipe_kind="dockerfile",
        recipe="FROM scratch\n",
        justification="test",
        state=state,
        team=team,
        submitted_at=timezone.now() if state == "submitted" else None,
    )


def test_review_queue_and_badge(world, admin_user, developer, service_team):
    for n in range(3):
        _request(service_team, f"q{n}", "submitted")
    _request(service_team, "draft", "draft")
    admin = _login(admin_user)
    page = admin.get("/").content.decode()
    assert 'id="review-count">3<' in page and "?queue=review" in page
    assert 'hx-get="/review-queue/badge/"' in page
    badge = admin.get("/review-queue/badge/").content.decode()
    assert 'id="review-badge"' in badge and ">3<" in badge
    # A developer sees their team's waiting requests, and no badge in the navigation.
    dev_page = _login(developer).get("/").content.decode()
    assert 'id="review-count">3<' in dev_page and "?state=submitted" in dev_page
    assert "review-queue/badge" not in dev_page


def test_anonymous_is_sent_to_login(world):
    assert Client().get("/").status_code == 302
    assert Client().get("/review-queue/badge/")["Location"].startswith("/login/")
    assert Client().get("/dashboard/chart/")["Location"].startswith("/login/")


def test_chart_fragment_is_empty_without_releases(db, developer):
    client = Client()
    client.force_login(developer)
    page = client.get("/").content.decode()
    assert 'hx-get="/dashboard/chart/"' in page and 'id="risk-empty"' in page
    assert b'id="chart-empty"' in client.get("/dashboard/chart/").content


def test_home_page_queries_do_not_grow_with_rows(
    world, admin_user, django_assert_max_num_queries, django_assert_num_queries
):
    client = _login(admin_user)
    client.get("/")  # warm the session
    cache.clear()  # the first-run banner is cached 3 s: count it in every request
    with django_assert_max_num_queries(13) as small:
        assert client.get("/").status_code == 200
    page_queries = len(small)  # now: Django's query log keeps only the last 9,000
    client.get("/dashboard/chart/")  # the first chart fills the 91 days' counts
    cache.clear()  # the first-run banner is cached 3 s: count it in every request
    # The chart's own four (filled days, stored counts, today's releases, base names); the
    # rest is the request's (session, user, memberships) and the first-run banner's three.
    with django_assert_max_num_queries(10) as chart:
        assert b'id="deployments-by-base"' in client.get("/dashboard/chart/").content
    chart_queries = len(chart)
    grow(world, 30)
    forget_daily_counts()  # grow() backdates releases into stored days: count them again
    client.get("/dashboard/chart/")
    cache.clear()  # the first-run banner is cached 3 s: count it in every request
    with django_assert_max_num_queries(page_queries):
        assert client.get("/").status_code == 200
    cache.clear()  # the first-run banner is cached 3 s: count it in every request
    with django_assert_num_queries(chart_queries):
        assert client.get("/dashboard/chart/").status_code == 200
    cache.clear()  # the first-run banner is cached 3 s: count it in every request
    with django_assert_max_num_queries(15) as listed:
        assert client.get("/deployments/?vulnerable=true").status_code == 200
    list_queries = len(listed)
    grow(world, 10)
    cache.clear()  # the first-run banner is cached 3 s: count it in every request
    with django_assert_max_num_queries(list_queries):
        assert client.get("/deployments/?vulnerable=true").status_code == 200


def test_dashboard_api_matches_the_page_and_is_scoped(world, token_client, service_team):
    body = token_client(service_team, ["deployments:read"]).get("/api/v1/dashboard/").json()
    assert [t["team"] for t in body["risk_by_team"]] == ["payments"]
    assert body["eol_soon"][0]["name"] == "runtime/ubuntu"
    assert {e["environment"] for e in body["pull_footprint"]} == {"prod", "dev"}
    assert len(body["deployments_by_base_image"]["labels"]) == 90
    denied = token_client(service_team, ["images:read"]).get("/api/v1/dashboard/")
    assert denied.status_code == 403 and "deployments:read" in denied.json()["detail"]
