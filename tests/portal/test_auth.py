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


def test_create_token_command_prints_a_working_secret_of_the_user(
    api, make_user, service_team, capsys
):
    """The token acts for --user; --team defaults to their only team (changed deliberately:
    the command used to make tokens with nobody behind them, see L5)."""
    from django.core.management import call_command

    dev = make_user("dana", service_team, "developer")
    call_command(
        "create_token",
        "--user",
        "dana",
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
    token = ApiToken.objects.get()
    assert (token.team, token.created_by, token.kind) == (service_team, dev, "api")


def test_create_token_command_errors_clearly(make_user, service_team, platform_team):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    make_user("dana", service_team, "viewer")
    both = make_user("bo", service_team, "developer")
    from portal.models import Membership

    Membership.objects.create(team=platform_team, user=both, role="viewer")
    args = ("--scopes", "images:read", "--name", "x")
    with pytest.raises(CommandError, match="Give --user NAME"):
        call_command("create_token", "--team", "payments", *args)
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("create_token", "--user", "nobody", *args)
    with pytest.raises(CommandError, match="No team named 'nope'"):
        call_command("create_token", "--user", "dana", "--team", "nope", *args)
    with pytest.raises(CommandError, match="Unknown scope"):
        call_command("create_token", "--user", "dana", "--scopes", "bogus", "--name", "x")
    with pytest.raises(CommandError, match=r"payments \(viewer\) does not allow: images:write"):
        call_command("create_token", "--user", "dana", "--scopes", "images:write", "--name", "x")
    with pytest.raises(CommandError, match=r"bo is in 2 teams \(payments, platform\); give --team"):
        call_command("create_token", "--user", "bo", *args)
    with pytest.raises(CommandError, match="not a member of team platform"):
        call_command("create_token", "--user", "dana", "--team", "platform", *args)
    assert not ApiToken.objects.exists()


# --- a token acts for its creator: never above their current role, never beyond its scopes ---


def _bearer(api, secret):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def _detail(response):
    body = response.json()
    assert set(body) >= {"detail", "code"}, body
    return body["detail"]


def test_l5_demotion_takes_effect_at_once(api, make_user, make_token, service_team):
    from portal.models import Membership

    dev = make_user("dana", service_team, "developer")
    _bearer(api, make_token(service_team, ["images:read", "images:write"], user=dev))
    assert api.post("/api/v1/image-requests/", {}, format="json").status_code == 400  # passes
    Membership.objects.filter(user=dev).update(role="viewer")
    response = api.post("/api/v1/image-requests/", {}, format="json")
    assert response.status_code == 403
    assert _detail(response) == (
        "This token acts for dana, now a viewer of team payments; scope 'images:write' needs "
        "the developer role."
    )
    assert api.get(URL).status_code == 200  # images:read is still within a viewer's role


def test_l5_removal_takes_effect_at_once(api, make_user, make_token, service_team):
    from portal.models import Membership

    dev = make_user("dana", service_team, "developer")
    _bearer(api, make_token(service_team, ["images:read"], user=dev))
    assert api.get(URL).status_code == 200
    Membership.objects.filter(user=dev).delete()
    for path in (URL, "/api/v1/jobs/"):
        response = api.get(path)
        assert response.status_code == 403, path
        assert "dana, who is no longer a member of team payments" in _detail(response)


def test_l5_a_token_with_nobody_behind_it_acts_for_nobody(api, service_team):
    _, secret = token_create(
        team=service_team, name="legacy", scopes=["images:read"], actor=Actor.system_actor()
    )
    response = _bearer(api, secret).get(URL)
    assert response.status_code == 403
    assert "has no person behind it" in _detail(response)
    assert "create_token --user NAME" in _detail(response)


def test_i5_platform_admin_cannot_mint_tokens_for_a_service_team(admin_user, service_team):
    """Refused, not capped: the admin is not a member, so the token would act for nobody."""
    for scopes in (["images:read"], ["services:write", "binaries:write"]):
        with pytest.raises(ValidationError, match="not a member of team payments"):
            token_create(team=service_team, name="x", scopes=scopes, actor=Actor(user=admin_user))
    assert not ApiToken.objects.exists()


def test_i5_platform_admin_mints_only_within_their_role(make_user, platform_team):
    from portal.models import Membership

    admin = make_user("ada", platform_team, "platform-admin")
    token, _ = token_create(
        team=platform_team, name="ok", scopes=["images:review"], actor=Actor(user=admin)
    )
    assert token.created_by == admin
    Membership.objects.filter(user=admin).update(role="developer")
    with pytest.raises(ValidationError, match=r"\(developer\) does not allow: images:review"):
        token_create(
            team=platform_team, name="no", scopes=["images:review"], actor=Actor(user=admin)
        )


@pytest.fixture
def platform_people(make_user, platform_team, admin_user):
    return {
        "dev": make_user("platform-dev", platform_team, "developer"),
        "viewer": make_user("platform-viewer", platform_team, "viewer"),
    }


ENVIRONMENT = {
    "name": "prod",
    "namespace": "payments-prod",
    "k8s_version": "1.33",
    "delivery_strategy": "initFetch",
}


def test_h2_platform_developer_token_cannot_create_environments_or_fetch_tokens(
    api, platform_people, make_token, platform_team, admin_user
):
    from deployments.models import Environment

    scopes = ["deployments:read", "deployments:write"]
    _bearer(api, make_token(platform_team, scopes, user=platform_people["dev"]))
    response = api.post("/api/v1/environments/", ENVIRONMENT, format="json")
    assert response.status_code == 403
    assert _detail(response) == (
        "Only platform admins may create environments; your role is developer."
    )
    assert not Environment.objects.exists()
    Environment.objects.create(name="prod", namespace="payments-prod", k8s_version="1.33")
    response = api.post("/api/v1/environments/prod/fetch-token/")
    assert response.status_code == 403
    assert "Only platform admins may create an environment's fetch token" in _detail(response)
    assert not ApiToken.objects.filter(kind="fetch").exists()
    # the same scopes on a platform admin's token pass
    _bearer(api, make_token(platform_team, scopes, user=admin_user))
    assert api.post("/api/v1/environments/prod/fetch-token/").status_code == 201


@pytest.fixture
def orders_job(db):
    from portal.jobs import job_create
    from portal.models import Team

    orders = Team.objects.create(name="orders")
    job, _ = job_create(kind="portal.selftest", actor=Actor.system_actor("t"), team=orders)
    return job


def test_h2_platform_viewer_token_sees_only_its_teams_jobs(
    api, platform_people, make_token, platform_team, orders_job
):
    from portal.jobs import job_create

    own, _ = job_create(kind="portal.selftest", actor=Actor.system_actor("t"), team=platform_team)
    _bearer(api, make_token(platform_team, ["binaries:read"], user=platform_people["viewer"]))
    listed = api.get("/api/v1/jobs/").json()
    assert [j["id"] for j in listed["results"]] == [own.pk]
    assert api.get(f"/api/v1/jobs/{orders_job.pk}/").status_code == 404
    assert api.post(f"/api/v1/jobs/{orders_job.pk}/cancel/").status_code == 404
    response = api.post(f"/api/v1/jobs/{own.pk}/cancel/")
    assert response.status_code == 403
    assert "needs a token with a write scope" in _detail(response)
    orders_job.refresh_from_db()
    assert orders_job.state == "queued"


def test_h2_fetch_token_cannot_read_or_cancel_jobs(api, admin_user, orders_job, settings, tmp_path):
    import hashlib

    from django.core.files.base import ContentFile

    from deployments.services import environment_fetch_token_create
    from deployments.storage import binary_store
    from tests.deployments.factories import (
        BinaryVersionFactory,
        EnvironmentFactory,
        ServiceFactory,
    )

    settings.STORAGES = {
        **settings.STORAGES,
        "binaries": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    payload = b"bin"
    sha = hashlib.sha256(payload).hexdigest()
    name, _ = binary_store(sha256=sha, content=ContentFile(payload))
    binary = BinaryVersionFactory(
        service=ServiceFactory(team=orders_job.team), sha256=sha, file=name, size=len(payload)
    )
    fetch = environment_fetch_token_create(
        environment=EnvironmentFactory(name="prod"), actor=Actor(user=admin_user)
    )
    _bearer(api, fetch.secret)
    assert api.get(f"/api/v1/binaries/{binary.pk}/download/").status_code == 200
    for method, path in [
        ("get", "/api/v1/jobs/"),
        ("get", f"/api/v1/jobs/{orders_job.pk}/"),
        ("post", f"/api/v1/jobs/{orders_job.pk}/cancel/"),
        ("get", f"/api/v1/binaries/{binary.pk}/"),
        ("get", "/api/v1/binaries/"),
        ("get", "/api/v1/environments/prod/hostpath-sync.yaml"),
        ("get", URL),
    ]:
        response = getattr(api, method)(path, HTTP_ACCEPT="application/json")
        assert response.status_code == 403, (path, response.content)
        assert "is a fetch token: it downloads binaries" in _detail(response)
    orders_job.refresh_from_db()
    assert orders_job.state == "queued"
    assert ApiToken.objects.get(pk=fetch.token.pk).kind == "fetch"


def test_h2_platform_viewer_token_sees_only_its_teams_image_requests(
    api, platform_people, make_token, platform_team, developer, service_team
):
    from images.models import ImageRequest

    request = ImageRequest.objects.create(
        name="runtime/debian-curl",
        tag="12-1",
        kind="runtime",
        os_family="debian",
        os_version="12",
        recipe_kind="dockerfile",
        recipe="FROM runtime/debian:12\n",
        justification="h2",
        team=service_team,
        requested_by=developer,
    )
    _bearer(api, make_token(platform_team, ["images:read"], user=platform_people["viewer"]))
    assert api.get("/api/v1/image-requests/").json()["count"] == 0
    assert api.get(f"/api/v1/image-requests/{request.pk}/").status_code == 404
    writer = make_token(platform_team, ["images:write"], user=platform_people["dev"])
    response = _bearer(api, writer).post(
        f"/api/v1/image-requests/{request.pk}/comment/", {"text": "hi"}
    )
    assert response.status_code == 404
    assert not request.events.filter(kind="comment").exists()


def test_readme_set_up_works_with_the_demo_users(demo_catalog, api, capsys):
    """The README's create_token lines, against seed_demo's people (one per role)."""
    from django.core.management import call_command

    from portal.models import Membership

    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {
        "platform-admin": "platform-admin",
        "payments-lead": "maintainer",
        "payments-dev": "developer",
    }
    for user, scopes in (
        ("payments-dev", "images:read,images:write"),
        ("platform-admin", "images:read,images:review"),
        ("payments-lead", "services:read,services:write"),
    ):
        call_command("create_token", "--user", user, "--scopes", scopes, "--name", user)
        secret = capsys.readouterr().out.strip()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert api.get("/api/v1/jobs/").status_code == 200, user
