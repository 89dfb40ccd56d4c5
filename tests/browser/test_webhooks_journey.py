"""The webhook pages in Debian's Chromium (issue 11): a team maintainer subscribes in the UI,
sends a test to a real local HTTP receiver, sees the delivery and its attempt in the log,
redelivers; a developer of the team reads the pages without the controls and is told who
manages them; a member whose role no longer allows it gets the 403 page naming the role and
its holders. Jobs run as the other browser journeys run them: `job_execute` between steps.
PORTAL_SCREENSHOT_DIR keeps screenshots at desktop and phone width."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from portal.choices import Role
from portal.jobs import job_execute
from portal.models import Job, Membership
from portal.webhooks.models import WebhookDelivery, WebhookSubscription
from tests.conftest import PASSWORD
from tests.portal.webhook_receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RELEASE = "io.baseimage.portal.release.created"
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture(autouse=True)
def _allow_local(settings: Any) -> None:
    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = True  # the receiver listens on 127.0.0.1
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1


@pytest.fixture
def receiver() -> Any:
    with Receiver() as r:
        yield r


def _login(page: Any, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


def _run_delivery_job() -> None:
    job = Job.objects.filter(kind="webhooks.deliver", state="queued").get()
    assert job_execute(job.pk) == "succeeded"


def _shots(page: Any, name: str) -> None:
    target = os.environ.get("PORTAL_SCREENSHOT_DIR")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(Path(target) / f"{name}-{label}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, label)
    page.set_viewport_size({"width": 1280, "height": 720})


def test_maintainer_subscribes_tests_and_redelivers_and_others_are_told_who_may(
    page: Any, browser: Any, live_server: Any, make_user: Any, service_team: Any, axe: Any,
    receiver: Receiver,
) -> None:  # fmt: skip
    make_user("mia-lead", service_team, Role.MAINTAINER)
    make_user("lee-lead", service_team, Role.MAINTAINER)
    make_user("dave-dev", service_team, Role.DEVELOPER)

    # A maintainer subscribes the team to release events.
    _login(page, "mia-lead")
    page.goto("/webhooks/")
    page.click("summary:has-text('New webhook')")
    page.select_option("select[name=team]", label=service_team.name)
    page.fill("input[name=name]", "ci")
    page.fill("input[name=url]", receiver.url("/ok"))
    page.check(f"input[name=event_types][value='{RELEASE}']")
    page.click("main form button[type=submit]:has-text('Create webhook')")
    page.wait_for_selector("#new-webhook")
    secret = page.inner_text("#webhook-secret")
    assert secret.startswith("whsec_")
    hook = WebhookSubscription.objects.get()
    assert (hook.team, hook.url, hook.event_types) == (service_team, receiver.url("/ok"), [RELEASE])
    axe(page)
    page.goto("/webhooks/")
    assert secret not in page.content()  # shown once
    page.click("main table >> text=ci")
    page.wait_for_url(f"**/webhooks/{hook.pk}/")
    assert "No deliveries yet" in page.inner_text("main")

    # Send test: the delivery page follows the job to its end without a reload.
    page.click("button[name=operation][value=test]")
    page.wait_for_url("**/webhooks/deliveries/*/")
    first = WebhookDelivery.objects.get()
    assert page.url.endswith(f"/webhooks/deliveries/{first.pk}/")
    assert "pending" in page.inner_text("#delivery hgroup")
    _run_delivery_job()
    page.wait_for_selector("#delivery hgroup .badge-succeeded")
    attempt = page.locator("#delivery table tbody tr")
    assert attempt.count() == 1
    assert "200" in attempt.inner_text() and "answer of /ok" in attempt.inner_text()
    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    assert sent.path == "/ok" and "X-Portal-Signature" in sent.headers
    event = json.loads(sent.body)
    assert event["type"] == "io.baseimage.portal.webhook.test"
    axe(page)
    _shots(page, "webhook-delivery")

    # The log on the subscription's page: the delivery, its state and status code.
    page.click(f"nav[aria-label] a[href='/webhooks/{hook.pk}/']")
    row = page.locator("main table tbody tr")
    assert row.count() == 1
    assert f"#{first.pk}" in row.inner_text() and "200" in row.inner_text()
    assert row.locator(".badge-succeeded").count() == 1
    axe(page)

    # Redeliver asks first, then sends the same CloudEvent again.
    page.click(f"main table a[href='/webhooks/deliveries/{first.pk}/']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delivery form button[type=submit]")
    page.wait_for_url(lambda url: not url.endswith(f"/deliveries/{first.pk}/"))
    again = WebhookDelivery.objects.exclude(pk=first.pk).get()
    assert page.url.endswith(f"/webhooks/deliveries/{again.pk}/")
    assert again.redelivery_of_id == first.pk
    _run_delivery_job()
    page.wait_for_selector("#delivery hgroup .badge-succeeded")
    assert f"#{first.pk}" in page.inner_text("#delivery")  # "Redelivery of #first"
    assert len(receiver.requests) == 2
    assert json.loads(receiver.requests[1].body)["id"] == event["id"]
    page.goto(f"/webhooks/{hook.pk}/")
    assert page.locator("main table tbody tr .badge-succeeded").count() == 2
    _shots(page, "webhook-detail")

    # A developer of the team reads the log but gets no controls, and is told who to ask.
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    try:
        dev = context.new_page()
        _login(dev, "dave-dev")
        dev.goto("/webhooks/")
        assert "Maintainers of a team" in dev.inner_text("main")
        assert dev.locator("summary:has-text('New webhook')").count() == 0
        dev.goto(f"/webhooks/{hook.pk}/")
        assert dev.locator("button[name=operation]").count() == 0
        managers = dev.inner_text("#webhook-managers")
        assert "lee-lead" in managers and "mia-lead" in managers, managers
        assert dev.locator("main table tbody tr").count() == 2
        axe(dev)
        _shots(dev, "webhook-detail-developer")
    finally:
        context.close()

    # Mia's role is lowered while her page is open: her next click gets the clear 403.
    page.goto(f"/webhooks/{hook.pk}/")
    Membership.objects.filter(user__username="mia-lead").update(role=Role.DEVELOPER)
    page.click("button[name=operation][value=test]")
    page.wait_for_selector("#error-message")
    message = page.inner_text("#error-message")
    assert "Only a maintainer of team payments or a platform admin" in message, message
    assert "Ask one of them: lee-lead." in message, message
    assert page.inner_text("main h1") == "You may not do this"
    assert WebhookDelivery.objects.count() == 2  # nothing was sent
    axe(page)
    _shots(page, "webhook-403")
