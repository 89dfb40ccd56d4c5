"""Portal pages: tokens (create once, refuse beyond the role, revoke), jobs, audit."""

import pytest

from portal.actors import Actor
from portal.jobs import job_create
from portal.models import ApiToken, AuditEntry

pytestmark = pytest.mark.django_db


def test_token_page_shows_the_secret_once_and_it_works(client, developer, service_team, api):
    client.force_login(developer)
    response = client.post(
        "/tokens/",
        {"team": service_team.pk, "name": "ci", "scopes": ["images:read"], "expires_days": 30},
    )
    html = response.content.decode()
    token = ApiToken.objects.get()
    secret = html.split('<pre id="token-secret"><code>')[1].split("</code>")[0]
    assert secret.startswith(f"bip_{token.prefix}_")
    assert "will not be shown again" in html
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/base-images/").status_code == 200
    assert secret not in client.get("/tokens/").content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "ci", "scopes": ["services:write"]}, "does not allow: services:write"),
        ({"name": "ci", "scopes": ["images:review"]}, "platform teams only"),
        ({"name": "", "scopes": ["images:read"]}, "This field is required"),
        ({"name": "ci", "scopes": []}, "This field is required"),
        ({"name": "ci", "scopes": ["images:read"], "expires_days": 0}, "greater than or equal"),
    ],
)
def test_token_page_refuses_bad_input_and_creates_nothing(
    client, developer, service_team, data, message
):
    client.force_login(developer)
    response = client.post("/tokens/", {"team": service_team.pk, **data})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()


def test_token_page_revokes_and_refuses_a_second_revoke(client, developer, service_team):
    client.force_login(developer)
    client.post("/tokens/", {"team": service_team.pk, "name": "ci", "scopes": ["images:read"]})
    token = ApiToken.objects.get()
    client.post("/tokens/", {"revoke": token.pk})
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = client.post("/tokens/", {"revoke": token.pk}, follow=True)
    assert "already revoked" in response.content.decode()


def test_tokens_of_other_teams_cannot_be_revoked(client, developer, platform_team, make_token):
    make_token(platform_team, ["images:read"])
    client.force_login(developer)
    token = ApiToken.objects.get()
    assert client.post("/tokens/", {"revoke": token.pk}).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_job_page_cancel_and_illegal_second_cancel(client, admin_user):
    client.force_login(admin_user)
    job, _ = job_create(kind="portal.selftest", actor=Actor(user=admin_user))
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Cancel job" in page and 'hx-trigger="every 1s"' in page
    response = client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert "cancelled" in response.content.decode()
    response = client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert "cannot become cancelled" in response.content.decode()
    assert 'hx-trigger="every 1s"' not in response.content.decode()  # final: no more polling


def test_audit_page_filters_by_action(client, admin_user, make_token, service_team):
    make_token(service_team, ["images:read"])
    job_create(kind="portal.selftest", actor=Actor(user=admin_user))
    client.force_login(admin_user)
    html = client.get("/audit/", {"action": "token."}).content.decode()
    assert "token.create" in html and "job.create" not in html
    assert AuditEntry.objects.filter(action="job.create").exists()


# --- M1: who may revoke a token ----------------------------------------------------------------


def _revoke(client, token):
    response = client.post("/tokens/", {"revoke": token.pk})
    token.refresh_from_db()
    return response


def test_m1_viewer_cannot_revoke_a_maintainers_token(
    client, make_user, make_token, service_team, api
):
    maintainer = make_user("payments-maint", service_team, "maintainer")
    secret = make_token(service_team, ["images:read", "services:write"], user=maintainer)
    token = ApiToken.objects.get()
    client.force_login(make_user("payments-viewer", service_team, "viewer"))
    response = _revoke(client, token)
    assert response.status_code == 403
    assert token.revoked_at is None
    page = client.get("/tokens/").content.decode()
    assert "payments-maint" in page and 'name="revoke"' not in page  # listed, no button
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/base-images/").status_code == 200
    assert not AuditEntry.objects.filter(action="token.revoke").exists()


def test_m1_creator_and_team_maintainer_may_revoke(client, make_user, make_token, service_team):
    dev = make_user("dana", service_team, "developer")
    make_token(service_team, ["images:read"], user=dev)
    make_token(service_team, ["images:read"], user=dev)
    own, other = ApiToken.objects.order_by("pk")
    other_dev = make_user("dino", service_team, "developer")
    client.force_login(other_dev)
    assert _revoke(client, own).status_code == 403 and own.revoked_at is None
    client.force_login(dev)
    assert _revoke(client, own).status_code == 302 and own.revoked_at is not None
    client.force_login(make_user("mia", service_team, "maintainer"))
    assert _revoke(client, other).status_code == 302 and other.revoked_at is not None


def test_m1_only_platform_admins_revoke_fetch_tokens(client, make_user, admin_user, platform_team):
    from deployments.services import environment_fetch_token_create
    from portal.models import Membership
    from tests.deployments.factories import EnvironmentFactory

    fetch = environment_fetch_token_create(
        environment=EnvironmentFactory(name="prod"), actor=Actor(user=admin_user)
    )
    token = fetch.token
    for role in ("viewer", "maintainer"):
        user = make_user(f"platform-{role}", platform_team, role)
        client.force_login(user)
        assert _revoke(client, token).status_code == 403, role
        assert token.revoked_at is None
    # even its creator, once no longer a platform admin
    Membership.objects.filter(user=admin_user).update(role="maintainer")
    client.force_login(admin_user)
    assert _revoke(client, token).status_code == 403 and token.revoked_at is None
    Membership.objects.filter(user=admin_user).update(role="platform-admin")
    assert _revoke(client, token).status_code == 302 and token.revoked_at is not None


def test_i5_tokens_page_offers_only_the_users_own_teams(client, admin_user, service_team):
    client.force_login(admin_user)
    page = client.get("/tokens/").content.decode()
    assert f'value="{service_team.pk}"' not in page
    response = client.post(
        "/tokens/", {"team": service_team.pk, "name": "x", "scopes": ["images:read"]}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_job_page_cancel_needs_a_developer_of_the_jobs_team(
    client, make_user, service_team, admin_user
):
    job, _ = job_create(kind="portal.selftest", actor=Actor(user=admin_user), team=service_team)
    client.force_login(make_user("vic", service_team, "viewer"))
    assert "Cancel job" not in client.get(f"/jobs/{job.pk}/").content.decode()
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.state == "queued"
    client.force_login(make_user("dana", service_team, "developer"))
    assert "Cancel job" in client.get(f"/jobs/{job.pk}/").content.decode()
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.state == "cancelled"
