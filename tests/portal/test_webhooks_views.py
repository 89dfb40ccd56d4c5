"""The webhooks pages: team-scoped lists, the secret shown once (no-store), edit, send test,
rotate, delete, the delivery page and redeliver; who may do what."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from portal.choices import Role
from portal.jobs import job_execute
from portal.models import Job, Team
from portal.webhooks.models import WebhookDelivery, WebhookSubscription
from tests.portal.webhook_receiver import Receiver

RELEASE = "io.baseimage.portal.release.created"


@pytest.fixture(autouse=True)
def _allow_local(settings: Any) -> None:
    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = True
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1


@pytest.fixture
def receiver() -> Any:
    with Receiver() as r:
        yield r


def _login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_maintainer_journey(make_user: Any, service_team: Team, receiver: Receiver) -> None:
    client = _login(make_user("mia", service_team, Role.MAINTAINER))
    page = client.get("/webhooks/")
    assert page.status_code == 200 and "New webhook" in page.content.decode()
    created = client.post(
        "/webhooks/",
        {
            "team": service_team.pk,
            "name": "ci",
            "url": receiver.url("/ok"),
            "event_types": [RELEASE],
            "active": "on",
        },
    )
    assert created.status_code == 200
    assert "no-store" in created["Cache-Control"]
    body = created.content.decode()
    assert "whsec_" in body and "will not be shown again" in body
    hook = WebhookSubscription.objects.get()
    assert "whsec_" not in client.get("/webhooks/").content.decode()

    detail = client.get(f"/webhooks/{hook.pk}/")
    assert detail.status_code == 200 and "Send test" in detail.content.decode()
    tested = client.post(f"/webhooks/{hook.pk}/", {"operation": "test"})
    delivery = WebhookDelivery.objects.get()
    assert (
        tested.status_code == 302 and tested["Location"] == f"/webhooks/deliveries/{delivery.pk}/"
    )
    assert job_execute(Job.objects.get(kind="webhooks.deliver").pk) == "succeeded"
    page = client.get(f"/webhooks/deliveries/{delivery.pk}/").content.decode()
    assert (
        "answer of /ok" in page
        and "Redeliver" in page
        and "io.baseimage.portal.webhook.test" in page
    )

    again = client.post(f"/webhooks/deliveries/{delivery.pk}/")
    assert again.status_code == 302 and WebhookDelivery.objects.count() == 2
    pending = WebhookDelivery.objects.latest("pk")
    refused = client.post(f"/webhooks/deliveries/{pending.pk}/", follow=True)
    assert "still pending" in refused.content.decode()

    edited = client.post(
        f"/webhooks/{hook.pk}/",
        {
            "operation": "update",
            "name": "ci2",
            "url": receiver.url("/ok"),
            "event_types": [RELEASE],
        },
    )
    assert edited.status_code == 302
    hook.refresh_from_db()
    assert hook.name == "ci2" and hook.active is False
    bad = client.post(
        f"/webhooks/{hook.pk}/",
        {"operation": "update", "name": "ci2", "url": "ftp://x", "event_types": [RELEASE]},
    )
    assert bad.status_code == 400 and "http:// or https://" in bad.content.decode()
    assert client.post(f"/webhooks/{hook.pk}/", {"operation": "explode"}).status_code == 400

    rotated = client.post(f"/webhooks/{hook.pk}/", {"operation": "rotate"})
    assert rotated.status_code == 200 and "whsec_" in rotated.content.decode()
    assert client.post(f"/webhooks/{hook.pk}/", {"operation": "delete"}).status_code == 302
    assert not WebhookSubscription.objects.exists()


def test_scoping_and_roles(make_user: Any, service_team: Team, receiver: Receiver) -> None:
    orders = Team.objects.create(name="orders")
    owner = _login(make_user("olga", orders, Role.MAINTAINER))
    owner.post(
        "/webhooks/",
        {"team": orders.pk, "name": "o", "url": receiver.url("/ok"), "event_types": [RELEASE]},
    )
    hook = WebhookSubscription.objects.get()

    viewer = _login(make_user("vic", service_team, Role.VIEWER))
    page = viewer.get("/webhooks/").content.decode()
    assert "Maintainers of a team" in page and f"/webhooks/{hook.pk}/" not in page
    assert viewer.get(f"/webhooks/{hook.pk}/").status_code == 404
    refused = viewer.post(
        "/webhooks/",
        {"team": orders.pk, "name": "x", "url": receiver.url("/ok"), "event_types": [RELEASE]},
    )
    assert refused.status_code == 400 and WebhookSubscription.objects.count() == 1

    orders_viewer = _login(make_user("ovi", orders, Role.VIEWER))
    assert orders_viewer.get(f"/webhooks/{hook.pk}/").status_code == 200
    assert "Send test" not in orders_viewer.get(f"/webhooks/{hook.pk}/").content.decode()
    assert orders_viewer.post(f"/webhooks/{hook.pk}/", {"operation": "test"}).status_code == 403
    assert Client().get("/webhooks/").status_code == 302  # to the login page
