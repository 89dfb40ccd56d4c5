"""Webhooks delivered to a real local HTTP receiver: CloudEvents body, HMAC signature, the
delivery log, back-off and its cap, down / slow / 500 / redirecting receivers, the address
rules (loopback and link-local refused by default), send test, redeliver, who may."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.choices import Role
from portal.events import EventType, event_emit
from portal.jobs import job_execute
from portal.models import Job, Team
from portal.webhooks.choices import TEST_EVENT_TYPE, DeliveryState
from portal.webhooks.models import WebhookDelivery
from portal.webhooks.services import (
    DELIVER_JOB_KIND,
    webhook_backoff_seconds,
    webhook_redeliver,
    webhook_retry_due,
    webhook_send_test,
    webhook_subscription_create,
    webhook_subscription_rotate_secret,
    webhook_subscription_secret,
)
from portal.webhooks.signing import signature_valid
from portal.webhooks.transport import AddressRefused, address_refusal, resolve_checked, url_problem
from tests.portal.webhook_receiver import Receiver, closed_port

_NAMES = itertools.count()


@pytest.fixture(autouse=True)
def _webhook_settings(settings: Any) -> None:
    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = True
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1
    settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 3
    settings.PORTAL_WEBHOOK_BACKOFF_SECONDS = 10
    settings.PORTAL_WEBHOOK_BACKOFF_MAX_SECONDS = 25
    settings.PORTAL_URL = "https://portal.example.com"


@pytest.fixture
def receiver() -> Any:
    with Receiver(slow_seconds=3) as r:
        yield r


@pytest.fixture
def maintainer(make_user: Any, service_team: Team) -> Actor:
    return Actor(user=make_user("mia-maint", service_team, Role.MAINTAINER))


def _subscribe(team: Team, actor: Actor, url: str, types: list[str] | None = None) -> Any:
    subscription, secret = webhook_subscription_create(
        team=team,
        name=f"hook-{next(_NAMES)}",
        url=url,
        event_types=types or [EventType.RELEASE_CREATED],
        actor=actor,
    )
    return subscription, secret


def _emit(team: Team | None, **kw: Any) -> int:
    with transaction.atomic():
        return event_emit(
            type=kw.pop("type", EventType.RELEASE_CREATED),
            team=team,
            subject=kw.pop("subject", "releases/7"),
            data=kw.pop("data", {"number": 7, "service": "pay-api"}),
            **kw,
        )


def _run_pending_jobs() -> list[str]:
    states = []
    for job in Job.objects.filter(kind=DELIVER_JOB_KIND, state="queued").order_by("id"):
        states.append(job_execute(job.pk))
    return states


def test_delivery_is_a_signed_cloudevent(
    service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    subscription, secret = _subscribe(service_team, maintainer, receiver.url("/ok?src=portal"))
    assert secret.startswith("whsec_") and secret == webhook_subscription_secret(subscription)
    assert secret not in json.dumps(list(type(subscription).objects.values()), default=str)

    assert _emit(service_team) == 1
    assert _run_pending_jobs() == ["succeeded"]

    [got] = receiver.requests
    assert got.path == "/ok?src=portal"
    assert got.headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    event = json.loads(got.body)
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.baseimage.portal.release.created"
    assert event["source"] == "https://portal.example.com"
    assert event["subject"] == "releases/7"
    assert event["portalteam"] == "payments"
    assert event["datacontenttype"] == "application/json"
    assert event["data"] == {"number": 7, "service": "pay-api"}
    assert event["id"] and event["time"].endswith("Z")
    timestamp = int(got.headers["X-Portal-Timestamp"])
    assert signature_valid(
        secret=secret, timestamp=timestamp, body=got.body, header=got.headers["X-Portal-Signature"]
    )
    assert not signature_valid(
        secret="whsec_other",
        timestamp=timestamp,
        body=got.body,
        header=got.headers["X-Portal-Signature"],
    )

    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempts == 1
    assert delivery.body.encode() == got.body  # the log holds the exact bytes signed
    [attempt] = delivery.tries.all()
    assert attempt.status_code == 200 and attempt.succeeded
    assert attempt.response_excerpt.startswith("answer of /ok")
    assert len(attempt.response_excerpt) == 2048  # an excerpt, not the 5 KB answer

    # A rotated secret signs the next delivery; the old one no longer verifies.
    _, new_secret = webhook_subscription_rotate_secret(subscription=subscription, actor=maintainer)
    assert new_secret != secret
    _emit(service_team)
    _run_pending_jobs()
    last = receiver.requests[-1]
    stamp = int(last.headers["X-Portal-Timestamp"])
    header = last.headers["X-Portal-Signature"]
    assert signature_valid(secret=new_secret, timestamp=stamp, body=last.body, header=header)
    assert not signature_valid(secret=secret, timestamp=stamp, body=last.body, header=header)


def test_500_is_retried_with_capped_backoff_until_attempts_are_spent(
    service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    _subscribe(service_team, maintainer, receiver.url("/fail"))
    _emit(service_team)
    assert _run_pending_jobs() == ["failed"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 1
    assert delivery.last_status_code == 500 and "HTTP 500" in delivery.last_error
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 5 < wait <= 10  # base 10 s after the first attempt

    assert [webhook_backoff_seconds(n) for n in (1, 2, 3, 4, 5)] == [10, 20, 25, 25, 25]
    assert webhook_retry_due() == []  # not due yet
    later = timezone.now() + timedelta(seconds=11)
    assert webhook_retry_due(now=later) == [delivery.pk]
    assert webhook_retry_due(now=later) == []  # claimed once
    assert _run_pending_jobs() == ["failed"]
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.state == DeliveryState.PENDING

    webhook_retry_due(now=timezone.now() + timedelta(seconds=30))
    assert _run_pending_jobs() == ["failed"]
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == 3  # the cap
    assert delivery.next_attempt_at is None and delivery.finished_at is not None
    assert webhook_retry_due(now=timezone.now() + timedelta(days=1)) == []
    assert len(receiver.requests) == 3
    assert [a.number for a in delivery.tries.all()] == [1, 2, 3]
    assert all(a.status_code == 500 and a.duration_ms >= 0 for a in delivery.tries.all())


def test_slow_receiver_times_out_and_is_retried(
    service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    _subscribe(service_team, maintainer, receiver.url("/slow"))
    _emit(service_team)
    assert _run_pending_jobs() == ["failed"]
    delivery = WebhookDelivery.objects.get()
    [attempt] = delivery.tries.all()
    assert "Timed out after 1 s" in attempt.error and attempt.status_code is None
    assert delivery.state == DeliveryState.PENDING and delivery.next_attempt_at is not None
    job = Job.objects.get(kind=DELIVER_JOB_KIND)
    assert "Timed out" in job.error


def test_receiver_that_is_down_is_retried(service_team: Team, maintainer: Actor) -> None:
    _subscribe(service_team, maintainer, f"http://127.0.0.1:{closed_port()}/hook")
    _emit(service_team)
    assert _run_pending_jobs() == ["failed"]
    delivery = WebhookDelivery.objects.get()
    assert "Could not connect" in delivery.last_error and "ConnectionRefused" in delivery.last_error
    assert delivery.state == DeliveryState.PENDING and delivery.next_attempt_at is not None


def test_redirects_are_not_followed_and_not_retried(
    service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    _subscribe(service_team, maintainer, receiver.url("/redirect"))
    _emit(service_team)
    _run_pending_jobs()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED and delivery.last_status_code == 302
    assert "redirects are not followed" in delivery.last_error
    assert [r.path for r in receiver.requests] == ["/redirect"]  # /ok was never asked


def test_4xx_is_final_but_429_is_retried(
    service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    _subscribe(service_team, maintainer, receiver.url("/gone"))
    _subscribe(service_team, maintainer, receiver.url("/busy"))
    _emit(service_team)
    _run_pending_jobs()
    states = {d.subscription.url.rsplit("/", 1)[1]: d.state for d in WebhookDelivery.objects.all()}
    assert states == {"gone": DeliveryState.FAILED, "busy": DeliveryState.PENDING}


def test_loopback_and_link_local_are_refused_by_default(
    settings: Any, service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    subscription, _ = _subscribe(service_team, maintainer, receiver.url("/ok"))
    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = False
    # A subscription naming such an address is refused at once ...
    for url in (
        receiver.url("/ok"),
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ):
        with pytest.raises(ValidationError, match="cannot receive webhooks"):
            _subscribe(service_team, maintainer, url)
    # ... one made while it was allowed is refused at delivery, and never retried.
    _emit(service_team)
    _run_pending_jobs()
    delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert delivery.state == DeliveryState.FAILED
    assert "Refused" in delivery.last_error and "loopback" in delivery.last_error
    assert receiver.requests == []


def test_every_resolved_address_is_checked() -> None:
    """A name is resolved at delivery and each of its addresses checked (no DNS shortcut)."""
    with pytest.raises(AddressRefused, match="loopback"):
        resolve_checked("localhost", 80, allow_local=False)
    assert resolve_checked("localhost", 80, allow_local=True)
    assert address_refusal("169.254.169.254", allow_local=False).endswith("metadata endpoint)")
    assert "loopback" in address_refusal("::ffff:127.0.0.1", allow_local=False)
    assert address_refusal("10.1.2.3", allow_local=False) == ""  # internal receivers are fine
    assert "unicast" in address_refusal("224.0.0.1", allow_local=True)
    assert url_problem("http://hooks.internal.example/x", allow_local=False) == ""


def test_audience_public_team_and_platform(
    platform_team: Team, service_team: Team, maintainer: Actor, admin_user: Any, receiver: Receiver
) -> None:
    orders = Team.objects.create(name="orders")
    admin = Actor(user=admin_user)
    types = [EventType.RELEASE_CREATED, EventType.IMAGE_VERSION_PUBLISHED]
    mine, _ = _subscribe(service_team, maintainer, receiver.url("/ok"), types)
    theirs, _ = _subscribe(orders, admin, receiver.url("/ok"), types)
    platform, _ = _subscribe(platform_team, admin, receiver.url("/ok"), types)
    _subscribe(service_team, maintainer, receiver.url("/ok"), [EventType.FINDING_CREATED])

    assert _emit(service_team) == 2  # a team event: the owning team and the platform
    assert set(WebhookDelivery.objects.values_list("subscription", flat=True)) == {
        mine.pk,
        platform.pk,
    }
    assert _emit(platform_team, type=EventType.IMAGE_VERSION_PUBLISHED, public=True) == 3
    assert WebhookDelivery.objects.filter(subscription=theirs).count() == 1
    theirs.active = False
    theirs.save()
    assert _emit(platform_team, type=EventType.IMAGE_VERSION_PUBLISHED, public=True) == 2
    with pytest.raises(ValueError, match="Unknown event type"):
        _emit(service_team, type="io.baseimage.portal.nope")


def test_rolled_back_change_announces_nothing(
    service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    _subscribe(service_team, maintainer, receiver.url("/ok"))
    with pytest.raises(RuntimeError), transaction.atomic():
        event_emit(type=EventType.RELEASE_CREATED, team=service_team, subject="x", data={})
        raise RuntimeError
    assert (
        not WebhookDelivery.objects.exists()
        and not Job.objects.filter(kind=DELIVER_JOB_KIND).exists()
    )


def test_send_test_and_redeliver(service_team: Team, maintainer: Actor, receiver: Receiver) -> None:
    subscription, _ = _subscribe(service_team, maintainer, receiver.url("/ok"))
    delivery, job = webhook_send_test(subscription=subscription, actor=maintainer)
    assert delivery.is_test and delivery.event_type == TEST_EVENT_TYPE
    with pytest.raises(Conflict, match="still pending"):
        webhook_redeliver(delivery=delivery, actor=maintainer)
    assert job_execute(job.pk) == "succeeded"
    delivery.refresh_from_db()
    again, job2 = webhook_redeliver(delivery=delivery, actor=maintainer)
    assert again.redelivery_of == delivery and again.event_id == delivery.event_id
    assert job_execute(job2.pk) == "succeeded"
    first, second = receiver.requests
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]
    assert json.loads(first.body)["type"] == TEST_EVENT_TYPE


def test_who_may_manage(
    make_user: Any, service_team: Team, maintainer: Actor, admin_user: Any, receiver: Receiver
) -> None:
    developer = Actor(user=make_user("dev", service_team, Role.DEVELOPER))
    outsider = Actor(user=make_user("out", Team.objects.create(name="orders"), Role.MAINTAINER))
    for actor in (developer, outsider):
        with pytest.raises(PermissionDenied, match="maintainer of team payments"):
            _subscribe(service_team, actor, receiver.url("/ok"))
    subscription, _ = _subscribe(service_team, Actor(user=admin_user), receiver.url("/ok"))
    with pytest.raises(PermissionDenied):
        webhook_send_test(subscription=subscription, actor=developer)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"url": "ftp://example.com/x"}, "url", "http:// or https://"),
        ({"url": "https://user:pw@example.com/x"}, "url", "credentials"),
        ({"url": "https://example.com/" + "a" * 500}, "url", "longer than"),
        ({"url": ""}, "url", "Give the URL"),
        ({"url": "http://[::1"}, "url", "not a URL"),
        ({"event_types": []}, "event_types", "at least one"),
        ({"event_types": ["io.baseimage.portal.webhook.test"]}, "event_types", "Unknown"),
        ({"event_types": "release"}, "event_types", "at least one"),
        ({"name": "  "}, "name", "Give the subscription a name"),
        ({"name": "x" * 101}, "name", "at most 100"),
        ({"name": "dup"}, "name", "already has"),
    ],
)
def test_bad_input(
    service_team: Team, maintainer: Actor, changes: dict, field: str, message: str
) -> None:
    webhook_subscription_create(
        team=service_team,
        name="dup",
        url="https://hooks.example.com/a",
        event_types=[EventType.RELEASE_CREATED],
        actor=maintainer,
    )
    values = {
        "name": "new",
        "url": "https://hooks.example.com/b",
        "event_types": [EventType.RELEASE_CREATED],
    }
    values.update(changes)
    with pytest.raises(ValidationError) as info:
        webhook_subscription_create(team=service_team, actor=maintainer, **values)
    assert field in info.value.message_dict
    assert message in " ".join(info.value.message_dict[field])
    assert service_team.webhook_subscriptions.count() == 1


def test_log_purge_keeps_pending_and_recent(
    service_team: Team, maintainer: Actor, receiver: Receiver
) -> None:
    from portal.webhooks.services import webhook_log_purge

    _subscribe(service_team, maintainer, receiver.url("/ok"))
    _emit(service_team)
    _run_pending_jobs()
    done = WebhookDelivery.objects.get()
    again, _job = webhook_redeliver(delivery=done, actor=maintainer)  # pending, points at done
    assert webhook_log_purge() == 0
    assert webhook_log_purge(now=timezone.now() + timedelta(days=31)) == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [again.pk]
