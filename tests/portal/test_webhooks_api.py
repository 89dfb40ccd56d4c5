"""`/api/v1/webhooks/…`: scopes, team scoping, the secret shown once, bad input, send test,
the delivery log and redeliver, against a real local receiver."""

from __future__ import annotations

from typing import Any

import pytest

from portal.choices import Scope
from portal.jobs import job_execute
from portal.models import Team
from portal.webhooks.models import WebhookDelivery, WebhookSubscription
from tests.portal.webhook_receiver import Receiver

RELEASE = "io.baseimage.portal.release.created"
R, W = Scope.WEBHOOKS_READ, Scope.WEBHOOKS_WRITE


@pytest.fixture(autouse=True)
def _allow_local(settings: Any) -> None:
    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = True
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1


@pytest.fixture
def receiver() -> Any:
    with Receiver() as r:
        yield r


def _create(client: Any, url: str, **extra: Any) -> Any:
    body = {"name": "ci", "url": url, "event_types": [RELEASE], **extra}
    return client.post("/api/v1/webhooks/", body, format="json")


def test_lifecycle(service_team: Team, token_client: Any, receiver: Receiver) -> None:
    client = token_client(service_team, [R, W])
    created = _create(client, receiver.url("/ok"))
    assert created.status_code == 201, created.content
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["team"] == "payments"
    hook = body["id"]

    listed = client.get("/api/v1/webhooks/").json()
    assert [h["id"] for h in listed["results"]] == [hook]
    assert "secret" not in listed["results"][0]
    assert "secret" not in client.get(f"/api/v1/webhooks/{hook}/").json()

    patched = client.patch(f"/api/v1/webhooks/{hook}/", {"active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["active"] is False

    test = client.post(f"/api/v1/webhooks/{hook}/test/")
    assert test.status_code == 202 and test["Location"].startswith("/api/v1/jobs/")
    assert job_execute(test.json()["job"]["id"]) == "succeeded"  # inactive: a test still goes
    delivery = test.json()["delivery"]["id"]

    log = client.get(f"/api/v1/webhooks/{hook}/deliveries/").json()
    assert [d["id"] for d in log["results"]] == [delivery]
    assert log["results"][0]["state"] == "succeeded"
    detail = client.get(f"/api/v1/webhooks/deliveries/{delivery}/").json()
    assert detail["attempts_log"][0]["status_code"] == 200
    assert detail["attempts_log"][0]["response_excerpt"].startswith("answer of /ok")
    assert '"type":"io.baseimage.portal.webhook.test"' in detail["body"]

    again = client.post(f"/api/v1/webhooks/deliveries/{delivery}/redeliver/")
    assert again.status_code == 202
    assert again.json()["delivery"]["redelivery_of"] == delivery
    conflict = client.post(
        f"/api/v1/webhooks/deliveries/{again.json()['delivery']['id']}/redeliver/"
    )
    assert conflict.status_code == 409 and conflict.json()["code"] == "illegal_transition"

    rotated = client.post(f"/api/v1/webhooks/{hook}/rotate-secret/")
    assert rotated.status_code == 201 and rotated.json()["secret"] != body["secret"]

    assert client.delete(f"/api/v1/webhooks/{hook}/").status_code == 204
    assert not WebhookSubscription.objects.exists() and not WebhookDelivery.objects.exists()


def test_scopes_and_roles(
    service_team: Team,
    token_client: Any,
    make_token: Any,
    api: Any,
    make_user: Any,
    receiver: Receiver,
) -> None:
    assert api.get("/api/v1/webhooks/").status_code == 401
    read_only = token_client(service_team, [R])
    refused = _create(read_only, receiver.url("/ok"))
    assert refused.status_code == 403 and "webhooks:write" in refused.json()["detail"]
    no_scope = token_client(service_team, [Scope.IMAGES_READ])
    assert no_scope.get("/api/v1/webhooks/").status_code == 403

    from portal.choices import Role

    developer = make_user("devon", service_team, Role.DEVELOPER)
    # A developer can hold webhooks:read but cannot mint webhooks:write (maintainer scope).
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="does not allow: webhooks:write"):
        make_token(service_team, [W], user=developer)
    dev_token = make_token(service_team, [R], user=developer)
    dev = api
    dev.credentials(HTTP_AUTHORIZATION=f"Bearer {dev_token}")
    assert dev.get("/api/v1/webhooks/").status_code == 200


def test_other_teams_hooks_are_invisible(
    service_team: Team, token_client: Any, receiver: Receiver
) -> None:
    orders = Team.objects.create(name="orders")
    mine = token_client(service_team, [R, W])
    theirs = token_client(orders, [R, W])
    hook = _create(theirs, receiver.url("/ok")).json()["id"]
    delivery = theirs.post(f"/api/v1/webhooks/{hook}/test/").json()["delivery"]["id"]
    assert mine.get("/api/v1/webhooks/").json()["results"] == []
    for method, url in [
        ("get", f"/api/v1/webhooks/{hook}/"),
        ("patch", f"/api/v1/webhooks/{hook}/"),
        ("delete", f"/api/v1/webhooks/{hook}/"),
        ("post", f"/api/v1/webhooks/{hook}/test/"),
        ("get", f"/api/v1/webhooks/{hook}/deliveries/"),
        ("get", f"/api/v1/webhooks/deliveries/{delivery}/"),
        ("post", f"/api/v1/webhooks/deliveries/{delivery}/redeliver/"),
    ]:
        response = getattr(mine, method)(url, {}, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["code"] == "not_found"
    # Naming another team on create is refused too.
    named = _create(mine, receiver.url("/ok"), team="orders")
    assert named.status_code == 400 and "team" in named.json()["errors"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"event_types": ["io.baseimage.portal.nope"]}, "Unknown event type"),
        ({"event_types": []}, "at least one"),
        ({"event_types": "x"}, "event_types"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "http://u:p@hooks.example.com/"}, "credentials"),
        ({"url": "http://hooks.example.com/" + "a" * 600}, "url"),
        ({"name": ""}, "name"),
        ({"active": "maybe"}, "active"),
    ],
)
def test_bad_input(service_team: Team, token_client: Any, body: dict, needle: str) -> None:
    client = token_client(service_team, [R, W])
    payload = {"name": "ci", "url": "https://hooks.example.com/x", "event_types": [RELEASE], **body}
    response = client.post("/api/v1/webhooks/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid" and needle in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_duplicate_and_bad_patch_and_refused_address(
    settings: Any, service_team: Team, token_client: Any
) -> None:
    client = token_client(service_team, [R, W])
    hook = _create(client, "https://hooks.example.com/x").json()["id"]
    duplicate = _create(client, "https://hooks.example.com/y")
    assert (
        duplicate.status_code == 400
        and "already has a webhook named ci" in duplicate.json()["detail"]
    )
    unknown = client.patch(f"/api/v1/webhooks/{hook}/", {"secret_salt": "x"}, format="json")
    assert unknown.status_code == 400 and "secret_salt" in unknown.json()["detail"]
    assert client.put(f"/api/v1/webhooks/{hook}/", {}, format="json").status_code == 405
    assert client.get("/api/v1/webhooks/deliveries/%C2%B2/").status_code == 404
    assert client.get(f"/api/v1/webhooks/{hook}/deliveries/", {"state": "weird"}).status_code == 400
    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = False
    local = client.patch(f"/api/v1/webhooks/{hook}/", {"url": "http://127.0.0.1:9/"}, format="json")
    assert local.status_code == 400 and "loopback" in local.json()["detail"]
    nested = client.post("/api/v1/webhooks/", "[" * 5000, content_type="application/json")
    assert nested.status_code == 400
