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
