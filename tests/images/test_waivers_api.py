"""The waiver API and UI: the permission matrix, bad input, filters and visibility, OpenVEX."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from images.models import Waiver
from images.services import waiver_approve, waiver_request
from images.vulns.openvex import openvex_validate
from portal.actors import Actor
from portal.choices import Role
from portal.models import Team
from tests.images.factories import BaseImageFactory, ImageVersionFactory
from tests.images.scandata import advisory

pytestmark = pytest.mark.django_db

CALLERS = (
    "anon", "viewer", "developer", "maintainer", "admin", "stranger", "token", "admin_token",
    "token_other",
)  # fmt: skip


def expiry(days: float = 30) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


@pytest.fixture
def world(make_user, service_team, platform_team, admin_user):
    users = {
        "viewer": make_user("v", service_team, Role.VIEWER),
        "developer": make_user("d", service_team, Role.DEVELOPER),
        "maintainer": make_user("m", service_team, Role.MAINTAINER),
        "admin": admin_user,
        "stranger": make_user("s", Team.objects.create(name="search"), Role.MAINTAINER),
    }
    admin2 = make_user("bob-admin", platform_team, Role.PLATFORM_ADMIN)
    image = BaseImageFactory(name="runtime/payments-base", owner_team=service_team)
    version = ImageVersionFactory(base_image=image, tag="12-1", state="candidate")
    foreign_image = BaseImageFactory(name="runtime/platform-only", owner_team=platform_team)
    foreign_version = ImageVersionFactory(base_image=foreign_image, tag="1", state="candidate")
    advisory("CVE-2026-1000")
    advisory("DSA-5999-1", aliases=("CVE-2026-1000",))

    def make(actor_user, target, package, approve=False):
        waiver = waiver_request(
            actor=Actor(user=actor_user),
            advisory_ref="CVE-2026-1000",
            scope="image_version",
            image_version_id=target.pk,
            package_name=package,
            status="not_affected",
            justification="component_not_present",
            expires_at=timezone.now() + dt.timedelta(days=20),
        )
        if approve:
            waiver_approve(waiver_id=waiver.pk, actor=Actor(user=admin2))
        return waiver.pk

    ids = {
        "waiver": make(users["developer"], version, "libc6"),
        "approved": make(users["developer"], version, "zlib1g", approve=True),
        "own": make(admin_user, version, "perl-base"),
        "foreign": make(admin2, foreign_version, "bash"),
        "version": version.pk,
        "foreign_version": foreign_version.pk,
    }
    return {"users": users, "ids": ids}


def client_for(caller, scope, world, make_token, service_team, platform_team, api=True):
    client = APIClient() if api else Client()
    if caller in world["users"]:
        client.force_login(world["users"][caller])
        return client
    if caller == "anon":
        return client
    if caller == "token":
        scopes = [scope] if scope != "images:review" else ["images:read", "images:write"]
        secret = make_token(service_team, scopes)
    elif caller == "admin_token":
        secret = make_token(platform_team, [scope])
    else:
        secret = make_token(service_team, ["dockerfile:check"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def body(world, **overrides):
    data = {
        "advisory_ref": "DSA-5999-1",
        "scope": "image_version",
        "image_version": world["ids"]["version"],
        "package_name": "openssl",
        "status": "not_affected",
        "justification": "vulnerable_code_not_present",
        "expires_at": expiry(),
    }
    data.update(overrides)
    return data


# (method, path, scope, statuses of: anon viewer developer maintainer admin stranger token
#  admin_token token_other)
API_MATRIX = [
    ("GET", "/api/v1/waivers/", "images:read",
     "401 200 200 200 200 200 200 200 403"),
    ("GET", "/api/v1/waivers/{waiver}/", "images:read",
     "401 200 200 200 200 404 200 200 403"),
    ("GET", "/api/v1/waivers/{foreign}/", "images:read",
     "401 404 404 404 200 404 404 200 403"),
    ("GET", "/api/v1/waivers/openvex.json", "images:read",
     "401 200 200 200 200 200 200 200 403"),
    ("GET", "/api/v1/waivers/openvex.json/", "images:read",
     "401 200 200 200 200 200 200 200 403"),
    ("POST", "/api/v1/waivers/", "images:write",
     "401 403 201 201 201 403 201 201 403"),
    ("POST", "/api/v1/waivers/{waiver}/approve/", "images:review",
     "401 403 403 403 200 403 403 200 403"),
    ("POST", "/api/v1/waivers/{approved}/approve/", "images:review",
     "401 403 403 403 409 403 403 409 403"),
    ("POST", "/api/v1/waivers/{own}/approve/", "images:review",
     "401 403 403 403 403 403 403 200 403"),
    ("POST", "/api/v1/waivers/{waiver}/reject/", "images:review",
     "401 403 403 403 200 403 403 200 403"),
    ("POST", "/api/v1/waivers/{own}/reject/", "images:review",
     "401 403 403 403 403 403 403 200 403"),
    ("POST", "/api/v1/waivers/{waiver}/revoke/", "images:write",
     "401 403 200 403 200 404 403 200 403"),
    ("POST", "/api/v1/waivers/{approved}/revoke/", "images:write",
     "401 403 200 403 200 404 403 200 403"),
    ("GET", "/api/v1/image-versions/{version}/gate/", "images:read",
     "401 200 200 200 200 200 200 200 403"),
]  # fmt: skip

# (method, path, statuses of: anon viewer developer maintainer admin stranger)
UI_MATRIX = [
    ("GET", "/waivers/", "302 200 200 200 200 200"),
    ("GET", "/waivers/?state=requested", "302 200 200 200 200 200"),
    ("GET", "/waivers/new/", "302 200 200 200 200 200"),
    ("GET", "/waivers/{waiver}/", "302 200 200 200 200 404"),
    ("GET", "/waivers/{foreign}/", "302 404 404 404 200 404"),
    ("POST", "/waivers/{waiver}/approve/", "302 403 403 403 302 404"),
    ("POST", "/waivers/{own}/approve/", "302 403 403 403 403 404"),
    ("POST", "/waivers/{waiver}/revoke/", "302 403 302 403 302 404"),
    ("POST", "/waivers/{waiver}/explode/", "302 404 404 404 404 404"),
]  # fmt: skip


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "scope", "expected"), API_MATRIX,
                         ids=[f"{m} {p}" for m, p, _, _ in API_MATRIX])  # fmt: skip
def test_api_permission_matrix(
    caller, method, path, scope, expected, world, make_token, service_team, platform_team
):
    want = int(dict(zip(CALLERS, expected.split(), strict=True))[caller])
    client = client_for(caller, scope, world, make_token, service_team, platform_team)
    url = path.format(**world["ids"])
    data = body(world) if method == "POST" and path == "/api/v1/waivers/" else {}
    response = getattr(client, method.lower())(url, data, format="json")
    assert response.status_code == want, (caller, response.content[:300])
    if response.status_code >= 400:
        assert set(response.json()) >= {"detail", "code"}


UI_CALLERS = CALLERS[:6]


@pytest.mark.parametrize("caller", UI_CALLERS)
@pytest.mark.parametrize(("method", "path", "expected"), UI_MATRIX,
                         ids=[f"{m} {p}" for m, p, _ in UI_MATRIX])  # fmt: skip
def test_ui_permission_matrix(caller, method, path, expected, world):
    want = int(dict(zip(UI_CALLERS, expected.split(), strict=True))[caller])
    client = Client()
    if caller in world["users"]:
        client.force_login(world["users"][caller])
    response = getattr(client, method.lower())(path.format(**world["ids"]))
    assert response.status_code == want, caller


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"advisory_ref": "CVE-2099-0001"}, "No imported advisory"),
        ({"advisory_ref": "A" * 101}, "advisory_ref"),
        ({"package_name": "p" * 256}, "package_name"),
        ({"scope": "galaxy"}, "scope"),
        ({"status": "sure"}, "status"),
        ({"justification": "trust me"}, "justification"),
        ({"justification": ""}, "needs a justification or an impact statement"),
        ({"status": "affected", "justification": ""}, "action statement"),
        ({"expires_at": None}, "expires_at"),
        ({"expires_at": "next tuesday"}, "expires_at"),
        ({"expires_at": expiry(-1)}, "in the future"),
        ({"expires_at": expiry(200)}, "at most 180 days"),
        ({"image_version": 0}, "image_version"),
        ({"image_version": 2**40}, "image_version"),
        ({"image_version": 999999}, "No image version"),
        ({"image_version": "abc"}, "image_version"),
        ({"scope": "service", "image_version": None, "service_name": "ghost"}, "Unknown service"),
        ({"scope": "team", "image_version": None}, "needs the team"),
        ({"impact_statement": "x" * 5001}, "impact_statement"),
    ],
)
def test_bad_input_is_400_with_a_clear_message(world, api, overrides, message):
    api.force_login(world["users"]["developer"])
    data = {k: v for k, v in body(world, **overrides).items() if v is not None}
    before = Waiver.objects.count()
    response = api.post("/api/v1/waivers/", data, format="json")
    assert response.status_code == 400, response.json()
    assert message in response.json()["detail"], response.json()
    assert Waiver.objects.count() == before


def test_malformed_json_is_400(world, api):
    api.force_login(world["users"]["developer"])
    response = api.post("/api/v1/waivers/", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"


def test_duplicate_is_409_and_out_of_scope_target_is_403(world, api):
    api.force_login(world["users"]["developer"])
    assert api.post("/api/v1/waivers/", body(world), format="json").status_code == 201
    response = api.post("/api/v1/waivers/", body(world), format="json")
    assert response.status_code == 409 and response.json()["code"] == "duplicate"
    foreign = body(world, image_version=world["ids"]["foreign_version"])
    response = api.post("/api/v1/waivers/", foreign, format="json")
    assert response.status_code == 403


def test_list_filters_and_visibility(world, api):
    ids = world["ids"]
    api.force_login(world["users"]["developer"])
    listed = {w["id"] for w in api.get("/api/v1/waivers/").json()["results"]}
    assert listed == {ids["waiver"], ids["approved"], ids["own"]}  # not the foreign one
    api.force_login(world["users"]["admin"])
    assert api.get("/api/v1/waivers/").json()["count"] == 4
    active = api.get("/api/v1/waivers/", {"active": "true"}).json()["results"]
    assert [w["id"] for w in active] == [ids["approved"]] and active[0]["active"] is True
    inactive = api.get("/api/v1/waivers/", {"active": "false"}).json()["count"]
    assert inactive == 3
    assert api.get("/api/v1/waivers/", {"state": "approved"}).json()["count"] == 1
    assert api.get("/api/v1/waivers/", {"scope": "team"}).json()["count"] == 0
    assert api.get("/api/v1/waivers/", {"advisory": "CVE-2026-1000"}).json()["count"] == 4
    assert api.get("/api/v1/waivers/", {"advisory": "DSA-5999-1"}).json()["count"] == 0
    for params in ({"state": "bogus"}, {"scope": "x"}, {"active": "maybe"},
                   {"image_version": "abc"}):  # fmt: skip
        response = api.get("/api/v1/waivers/", params)
        assert response.status_code == 400, params
    Waiver.objects.filter(pk=ids["approved"]).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    assert api.get("/api/v1/waivers/", {"active": "true"}).json()["count"] == 0


def test_approve_note_and_openvex_over_the_api(world, api, make_token, platform_team):
    ids = world["ids"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(platform_team, ['images:review'])}")
    response = api.post(f"/api/v1/waivers/{ids['waiver']}/approve/", {"note": "ok"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "approved"
    assert response.json()["decision_note"] == "ok"
    response = api.post(f"/api/v1/waivers/{ids['own']}/reject/", {"note": "n" * 5001},
                        format="json")  # fmt: skip
    assert response.status_code == 400
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(platform_team, ['images:read'])}")
    document = api.get("/api/v1/waivers/openvex.json").json()
    assert openvex_validate(document) == []
    assert len(document["statements"]) == 2  # the two approved, unexpired waivers
    assert json.dumps(document).count("CVE-2026-1000") >= 2


def test_waiver_form_prefills_and_requests(world, client):
    client.force_login(world["users"]["developer"])
    version = world["ids"]["version"]
    page = client.get(
        f"/waivers/new/?advisory=DSA-5999-1&image_version={version}&package=openssl"
    ).content.decode()
    assert 'value="DSA-5999-1"' in page and 'value="openssl"' in page
    assert f'value="{version}"' in page
    form = {
        "advisory_ref": "DSA-5999-1", "package_name": "openssl", "scope": "image_version",
        "image_version": version, "status": "not_affected",
        "justification": "vulnerable_code_not_present",
        "expires_at": (timezone.now() + dt.timedelta(days=10)).date().isoformat(),
    }  # fmt: skip
    response = client.post("/waivers/new/", form)
    waiver = Waiver.objects.get(advisory_ref="DSA-5999-1")
    assert response.status_code == 302 and response["Location"] == f"/waivers/{waiver.pk}/"
    assert waiver.requested_by == world["users"]["developer"] and waiver.state == "requested"
    # bad input comes back on the form, nothing is created
    bad = {**form, "package_name": "libssl3", "expires_at": "2020-01-01"}
    page = client.post("/waivers/new/", bad).content.decode()
    assert "The expiry must be in the future." in page
    bad = {**form, "package_name": "libssl3", "justification": ""}
    page = client.post("/waivers/new/", bad).content.decode()
    assert "not_affected waiver needs" in page
    assert Waiver.objects.filter(advisory_ref="DSA-5999-1").count() == 1
    # the last day allowed is accepted (clamped to the longest expiry), the day after is not
    last = (timezone.now() + dt.timedelta(days=180)).date().isoformat()
    after = (timezone.now() + dt.timedelta(days=181)).date().isoformat()
    page = client.post("/waivers/new/", {**form, "package_name": "x", "expires_at": after})
    assert "at most 180 days" in page.content.decode()
    response = client.post("/waivers/new/", {**form, "package_name": "x", "expires_at": last})
    assert response.status_code == 302
    assert Waiver.objects.get(package_name="x").expires_at <= timezone.now() + dt.timedelta(180)
    detail = client.get(f"/waivers/{waiver.pk}/").content.decode()
    assert "Revoke" in detail and "Approve" not in detail  # the requester cannot approve
    client.force_login(world["users"]["admin"])
    detail = client.get(f"/waivers/{waiver.pk}/").content.decode()
    assert "Approve" in detail and "Reject" in detail
    response = client.post(f"/waivers/{waiver.pk}/approve/", {"note": "fine"})
    assert response.status_code == 302
    assert Waiver.objects.get(pk=waiver.pk).state == "approved"
    listing = client.get("/waivers/").content.decode()
    assert "DSA-5999-1" in listing and 'href="/waivers/"' in listing  # the nav link
