"""API tokens: creation rules, bearer authentication, expiry, revocation, scopes."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.actors import Actor
from portal.auth import token_create, token_revoke
from portal.models import ApiToken, AuditEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/base-images/"


def test_secret_is_stored_only_as_hash(service_team):
    token, secret = token_create(
        team=service_team, name="ci", scopes=["images:read"], actor=Actor.system_actor()
    )
    assert secret.startswith(f"bip_{token.prefix}_")
    row = ApiToken.objects.get(pk=token.pk)
    assert secret not in (row.secret_hash, row.prefix, row.name)
    assert len(row.secret_hash) == 64
    assert AuditEntry.objects.filter(action="token.create", object_id=str(token.pk)).exists()


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ([], "at least one scope"),
        (["images:read", "images:fly"], r"Unknown scope\(s\): images:fly"),
        (["images:review"], "platform teams only"),
    ],
)
def test_bad_scopes_are_refused(service_team, scopes, message):
    with pytest.raises(ValidationError, match=message):
        token_create(team=service_team, name="x", scopes=scopes, actor=Actor.system_actor())
    assert not ApiToken.objects.exists()


def test_duplicate_name_and_bad_expiry_are_refused(service_team):
    token_create(team=service_team, name="ci", scopes=["images:read"], actor=Actor.system_actor())
    with pytest.raises(ValidationError, match="already has a token named"):
        token_create(
            team=service_team, name="ci", scopes=["images:read"], actor=Actor.system_actor()
        )
    with pytest.raises(ValidationError, match="positive number of days"):
        token_create(
            team=service_team,
            name="ci2",
            scopes=["images:read"],
            expires_days=0,
            actor=Actor.system_actor(),
        )
    assert ApiToken.objects.count() == 1


def test_user_cannot_grant_scopes_beyond_their_role(make_user, service_team):
    viewer = make_user("vic", service_team, "viewer")
    with pytest.raises(ValidationError, match="does not allow: binaries:write"):
        token_create(
            team=service_team, name="ci", scopes=["binaries:write"], actor=Actor(user=viewer)
        )


def test_valid_token_authenticates_and_records_last_use(api, make_token, service_team):
    secret = make_token(service_team, ["images:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(URL).status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authentication required"),
        ("Bearer", "Malformed Authorization header"),
        ("Bearer nonsense", "Malformed token"),
        ("Bearer bip_000000000000_wrong", "Invalid token"),
    ],
)
def test_missing_or_bad_credentials_are_401(api, header, detail):
    if header:
        api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(URL)
    assert response.status_code == 401
    assert detail in response.json()["detail"]
    assert response.json()["code"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_secret_for_known_prefix_is_401(api, make_token, service_team):
    secret = make_token(service_team, ["images:read"])
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret[:-3]}xyz")
    assert api.get(URL).json()["detail"] == "Invalid token."


def test_expired_token_is_401(api, make_token, service_team):
    secret = make_token(service_team, ["images:read"], expires_days=1)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.get(URL)
    assert response.status_code == 401
    assert response.json()["detail"] == "This token has expired."


def test_revoked_token_is_401_and_revoking_twice_is_refused(api, make_token, service_team):
    secret = make_token(service_team, ["images:read"])
    token = ApiToken.objects.get()
    token_revoke(token=token, actor=Actor.system_actor())
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api.get(URL)
    assert response.status_code == 401
    assert response.json()["detail"] == "This token was revoked."
    with pytest.raises(ValidationError, match="already revoked"):
        token_revoke(token=token, actor=Actor.system_actor())


def test_wrong_scope_is_403_with_the_missing_scope(api, make_token, service_team):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(service_team, ['dockerfile:check'])}")
    response = api.get(URL)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "This token lacks the 'images:read' scope.",
        "code": "permission_denied",
    }


def test_create_token_command_prints_a_working_secret(api, service_team, capsys):
    from django.core.management import call_command

    call_command(
        "create_token",
        "--team",
        "payments",
        "--scopes",
        "images:read,dockerfile:check",
        "--name",
        "ci",
        "--expires-days",
        "30",
    )
    secret = capsys.readouterr().out.strip()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(URL).status_code == 200


def test_create_token_command_errors_clearly(service_team):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No team named 'nope'"):
        call_command("create_token", "--team", "nope", "--scopes", "images:read", "--name", "x")
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_token", "--team", "payments", "--scopes", "bogus", "--name", "x")
