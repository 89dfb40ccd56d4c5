"""Team pages and error pages: who may manage whom, 403s that name the role and its holders,
404s in the portal's look, a JSON 404 under /api/v1/."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.models import AuditEntry, Membership, Team

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def maintainer(make_user, service_team):
    return make_user("mia-maint", service_team, "maintainer")


def test_admin_creates_a_team_and_adds_a_maintainer(admin_user, make_user):
    make_user("newbie")
    client = _client(admin_user)
    response = client.post("/teams/", {"name": "checkout", "display_name": "Checkout"})
    assert response.status_code == 302 and response["Location"] == "/teams/checkout/"
    team = Team.objects.get(name="checkout")
    response = client.post(
        "/teams/checkout/", {"username": "newbie", "role": "maintainer", "action": "set"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(team=team, user__username="newbie").role == "maintainer"
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"team.create", "membership.set"} <= actions
    page = client.get("/teams/").content.decode()
    assert "checkout" in page and "newbie" in page


def test_bad_team_inputs_change_nothing(admin_user, service_team):
    client = _client(admin_user)
    before = Team.objects.count()
    assert client.post("/teams/", {"name": "Not A Label!"}).status_code == 400
    duplicate = client.post("/teams/", {"name": service_team.name})
    assert duplicate.status_code == 400 and "exists" in duplicate.content.decode()
    assert Team.objects.count() == before
    unknown = client.post(f"/teams/{service_team.name}/", {"username": "ghost", "role": "viewer"})
    assert unknown.status_code == 400 and "No user ghost" in unknown.content.decode()
    bad_role = client.post(
        f"/teams/{service_team.name}/", {"username": "dave-dev", "role": "platform-admin"}
    )
    assert bad_role.status_code == 400
    assert "platform team" in bad_role.content.decode()
    assert client.get("/teams/nope/").status_code == 404


def test_maintainer_manages_own_team_but_not_others(maintainer, developer, service_team):
    other = Team.objects.create(name="search")
    client = _client(maintainer)
    ok = client.post(f"/teams/{service_team.name}/", {"username": "dave-dev", "role": "viewer"})
    assert ok.status_code == 302
    assert Membership.objects.get(team=service_team, user=developer).role == "viewer"
    refused = client.post(f"/teams/{other.name}/", {"username": "dave-dev", "role": "viewer"})
    assert refused.status_code == 403
    assert "maintainer role in search" in refused.content.decode()
    removed = client.post(
        f"/teams/{service_team.name}/", {"username": "dave-dev", "action": "remove"}
    )
    assert removed.status_code == 302
    assert not Membership.objects.filter(team=service_team, user=developer).exists()


def test_developer_is_refused_with_role_and_holders(
    developer, maintainer, service_team, admin_user
):
    client = _client(developer)
    response = client.post("/teams/", {"name": "mine"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "platform-admin role" in page and admin_user.username in page
    assert 'topbar"' in page  # the portal's look, not Django's bare page
    response = client.post(
        f"/teams/{service_team.name}/", {"username": "dave-dev", "role": "maintainer"}
    )
    assert response.status_code == 403
    assert "mia-maint" in response.content.decode()


def test_team_role_refusal_names_the_holders(developer, maintainer, service_team):
    from portal.actors import Actor
    from portal.teams import require_team_role

    with pytest.raises(Exception, match="Ask one of them: mia-maint"):
        require_team_role(
            actor=Actor(user=developer), team=service_team, minimum="maintainer", what="x"
        )


def test_404_page_and_api_json_404(developer):
    client = _client(developer)
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and 'topbar"' in page.content.decode()
    api = client.get("/api/v1/no-such-route/")
    assert api.status_code == 404 and api["Content-Type"] == "application/json"
    assert api.json()["code"] == "not_found" and "/api/docs/" in api.json()["detail"]
    missing = client.get("/base-images/999999/")
    assert missing.status_code == 404 and 'topbar"' in missing.content.decode()


def test_500_page_renders_without_request_context():
    from portal.views import server_error

    response = server_error(None)  # type: ignore[arg-type]
    assert response.status_code == 500 and b"Base Image Portal" in response.content
