"""axe-core on every main page of the portal, in English and in 简体中文 (issue 11).

One browser context per language: anonymous first (the login page, a 404), then a service
team's developer (a 403, the deploy form), then a platform admin, who sees every other page
and the error pages a signed-in reader gets (a 404 with its reason, the 500 page of a view
that fails: `tests.browser.error_urls`).
The data is the scans journey's world (`scanned_world`) plus one of each other entity, made
with the same helpers the other tests use. Each page is checked with the axe fixture's rule
set (WCAG 2.1 A and AA), English at 1366 px and Chinese at 390 px (where no page may be wider
than the screen either); the failure names every page, its language and its violations at
once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from portal.actors import Actor
from portal.jobs import job_execute
from tests.browser.axe import axe_violations, format_violations
from tests.browser.error_urls import FAILING_PATH
from tests.browser.test_scans_journey import scanned_world  # noqa: F401 - a fixture
from tests.conftest import PASSWORD
from tests.deployments.dashboard_world import release
from tests.deployments.test_dashboard import _request
from tests.i18n_support import compile_catalog
from tests.portal.webhook_receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LANGUAGES = {"en-US": "en", "zh-CN": "zh-hans"}
# What each breadcrumb step draws after it (the translated aria-label must not lose Pico's ">").
DIVIDERS = (
    "() => [...document.querySelectorAll('main nav.breadcrumb li:not(:last-child)')]"
    ".map(li => getComputedStyle(li, '::after').content)"
)
# English at desktop width, Chinese at phone width: both languages and both layouts (what
# differs between the widths, boxes that scroll and the collapsed navigation, is checked too)
# for the price of two passes.
VIEWPORTS = {"en-US": {"width": 1366, "height": 900}, "zh-CN": {"width": 390, "height": 844}}
# What axe cannot judge: the dashboard chart is a canvas (its text is its aria-label).
EXCLUDE = {"/": ["#deployments-chart"]}
# Fragments htmx loads after the page (hx-trigger="load", swapped outerHTML) have arrived.
SETTLED = (
    "() => !document.querySelector("
    "'[hx-trigger=load], .htmx-request, .htmx-settling, .htmx-swapping, .htmx-added')"
)


@pytest.fixture
def pages(
    settings: Any,
    make_user: Any,
    make_token: Any,
    admin_user: Any,
    developer: Any,
    service_team: Any,
    platform_team: Any,
    scanned_world: dict[str, Any],  # noqa: F811 - the imported fixture
) -> dict[str, str]:
    """One of each main entity on top of the scans world; returns {page name: URL}."""
    from deployments.models import Deployment, Plan, PlanItem
    from images.services import waiver_request
    from portal.webhooks.models import WebhookDelivery
    from portal.webhooks.services import webhook_send_test, webhook_subscription_create

    settings.PORTAL_WEBHOOK_ALLOW_LOCAL = True
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1
    image, new = scanned_world["image"], scanned_world["new"]
    old = new.base_image.versions.get(tag="12.5")
    prod = Deployment.objects.get(service__name="pay-api", environment__name="prod")
    staging = Deployment.objects.get(service__name="pay-api", environment__name="staging")
    first = release(prod, old, 20, 1)
    second = release(prod, new, 2, 2)
    request = _request(service_team, "12.7", "submitted")
    make_user("mia-lead", service_team, "maintainer")
    plan = Plan.objects.create(kind="rebase", from_version=old, to_version=new, wave_size=2)
    PlanItem.objects.create(
        plan=plan, deployment=staging, from_version=old, target_version=new, verdict="compatible"
    )
    admin = Actor(user=admin_user)
    waiver = waiver_request(
        actor=admin,
        advisory_ref="CVE-2024-0001",
        scope="image_version",
        image_version_id=new.pk,
        status="not_affected",
        justification="vulnerable_code_not_in_execute_path",
        expires_at=timezone.now() + dt.timedelta(days=30),
    )
    make_token(service_team, ["images:read"], user=developer)
    make_token(platform_team, ["images:read", "webhooks:read"], user=admin_user)
    with Receiver() as receiver:
        hook, _secret = webhook_subscription_create(
            team=service_team,
            name="ci",
            url=receiver.url("/ok"),
            event_types=["io.baseimage.portal.release.created"],
            actor=admin,
        )
        delivery, job = webhook_send_test(subscription=hook, actor=admin)
        assert job_execute(job.pk) == "succeeded"
    delivery = WebhookDelivery.objects.get(pk=delivery.pk)
    return {
        "dashboard": "/",
        "catalog": "/base-images/",
        "image": f"/base-images/{image.pk}/",
        "version and its findings": f"/image-versions/{new.pk}/",
        "revoke a version": f"/image-versions/{new.pk}/revoke/",
        "requests": "/image-requests/",
        "review queue": "/image-requests/?queue=review",
        "new request": "/image-requests/new/",
        "request": f"/image-requests/{request.pk}/",
        "waivers": "/waivers/",
        "new waiver": "/waivers/new/",
        "waiver": f"/waivers/{waiver.pk}/",
        "Dockerfile check": "/dockerfile-check/",
        "rule reference": "/rules/",
        "rule": "/rules/BIP004/",
        "image request rule": "/rules/BUILD005/",
        "services": "/services/",
        "new service": "/services/new/",
        "service and its binaries": "/services/pay-api/",
        "binary upload": "/services/pay-api/upload/",
        "environments": "/environments/",
        "environment": "/environments/prod/",
        "new environment": "/environments/new/",
        "deployments": "/deployments/",
        "deployment": f"/deployments/{prod.pk}/",
        "release diff": f"/deployments/{prod.pk}/diff/?a={first.pk}&b={second.pk}",
        "release": f"/releases/{second.pk}/",
        "plans": "/plans/",
        "plan": f"/plans/{plan.pk}/",
        "new rebase plan": f"/rebase-plans/new/?from_version={old.pk}",
        "new migration plan": "/migration-plans/new/",
        "advisories": "/advisories/",
        "CVE": "/advisories/CVE-2024-0001/",
        "advisory imports": "/advisory-imports/",
        "teams": "/teams/",
        "team": "/teams/payments/",
        "webhooks": "/webhooks/",
        "webhook": f"/webhooks/{hook.pk}/",
        "webhook delivery": f"/webhooks/deliveries/{delivery.pk}/",
        "jobs": "/jobs/",
        "job": f"/jobs/{job.pk}/",
        "audit": "/audit/",
        "search": "/search/?q=runtime",
        "tokens": "/tokens/",
    }


def _login(page: Any, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("load")
    assert "/login/" not in page.url, f"{username} could not log in"


@pytest.mark.parametrize("locale", list(LANGUAGES))
def test_every_main_page_is_axe_clean(
    browser: Any, live_server: Any, pages: dict[str, str], locale: str, settings: Any
) -> None:
    compile_catalog()
    settings.ROOT_URLCONF = "tests.browser.error_urls"  # the portal's URLs + a failing view
    viewport = VIEWPORTS[locale]
    context = browser.new_context(base_url=live_server.url, locale=locale, viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    failures: list[str] = []

    def audit(name: str) -> None:
        page.wait_for_function(SETTLED)  # the htmx fragments (badge, used-by, chart) are in
        assert page.get_attribute("html", "lang") == LANGUAGES[locale], (name, locale)
        path = page.url.removeprefix(live_server.url)
        where = f"{name} ({path}) in {locale} at {viewport['width']} px"
        violations = axe_violations(page, exclude=EXCLUDE.get(path))
        if violations:
            failures.append(f"{where}:\n{format_violations(violations)}")
        dividers = page.evaluate(DIVIDERS)
        if any(d in ("none", "normal", "") for d in dividers):
            failures.append(f"{where}: the breadcrumb shows no dividers ({dividers})")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > viewport["width"]:
            failures.append(f"{where}: the page is {width} px wide (tables scroll in their box)")

    def check(name: str, url: str, status: int = 200) -> None:
        response = page.goto(url)
        assert response is not None and response.status == status, (name, url, response)
        audit(name)

    try:
        check("login", "/login/")
        check("not found (404)", "/no-such-page/", status=404)
        _login(page, "dave-dev")
        check("not allowed (403)", "/image-requests/?queue=review", status=403)
        check("new deployment", "/services/pay-api/deploy/")  # a developer of the team deploys
        context.clear_cookies()
        _login(page, "alice-admin")
        for name, url in pages.items():
            check(name, url)
        check("not found (404) with its reason", "/rules/BIP999/", status=404)
        check("not found (404), signed in", "/no-such-page/", status=404)
        check("server error (500)", FAILING_PATH, status=500)
        # Pages after a submit: a Dockerfile's findings, a form's field errors.
        page.goto("/dockerfile-check/")
        page.fill("textarea[name=dockerfile]", "FROM alpine:3\nRUN apt-get install curl\n")
        page.click("#dockerfile-check-form button[type=submit]")
        page.wait_for_load_state("load")
        audit("Dockerfile check findings")
        page.goto("/image-requests/new/")
        page.click("main form button[name=submit][value='1']")
        page.wait_for_load_state("load")
        audit("new request with field errors")
    finally:
        context.close()
    assert not failures, f"{len(failures)} finding(s):\n\n" + "\n\n".join(failures)
