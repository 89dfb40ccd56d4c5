"""A platform admin follows a plan live (htmx polling of the plan partial) and walks the
OS-migration wizard in Chromium, with no Content-Security-Policy violation."""

from __future__ import annotations

import os

import pytest

from deployments.models import Plan, PlanItem
from portal.choices import Role
from tests.conftest import PASSWORD
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("BIP_SCREENSHOTS", "")  # a directory: save the pages for a look


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


@pytest.fixture
def world(make_user, platform_team, service_team):
    make_user("alice-admin", platform_team, Role.PLATFORM_ADMIN)
    debian = BaseImageFactory(name="runtime/debian", os_version="12")
    legacy = BaseImageFactory(
        name="runtime/debian-11", os_version="11", status="deprecated", replacement=debian
    )
    old = ImageVersionFactory(base_image=debian, tag="12", state="superseded")
    new = ImageVersionFactory(base_image=debian, tag="12-p1")
    on_11 = ImageVersionFactory(base_image=legacy, tag="11")
    plan = Plan.objects.create(
        kind="rebase", from_version=old, to_version=new, state="applying", wave_size=2
    )
    items = []
    for n, env in enumerate(("dev", "prod", "prod")):
        deployment = DeploymentFactory(
            service=ServiceFactory(name=f"svc-{n}", team=service_team),
            environment=EnvironmentFactory(name=env, namespace=f"ns-{env}"),
            runtime_version=old,
        )
        items.append(
            PlanItem.objects.create(
                plan=plan,
                deployment=deployment,
                from_version=old,
                target_version=new,
                verdict="compatible" if n < 2 else "incompatible",
                state="released" if n == 0 else ("blocked" if n == 2 else "pending"),
                wave=0 if n == 0 else 1,
                findings=[]
                if n < 2
                else [
                    {
                        "key": "needed-missing",
                        "severity": "error",
                        "blocking": True,
                        "title": "libssl.so.1.1 is not on the target's search path",
                        "detail": "runtime/debian:12 ships libssl.so.3.",
                        "remediation": "Rebuild against OpenSSL 3 in build/gcc:12.",
                    }
                ],
            )
        )
    DeploymentFactory(
        service=ServiceFactory(name="invoices", team=service_team),
        environment=EnvironmentFactory(name="dev", namespace="ns-dev"),
        runtime_version=on_11,
    )
    return {"plan": plan, "items": items, "target": new}


def test_plan_page_follows_the_rollout_live_and_the_wizard_works(page, world) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto("/login/")
    page.fill("input[name=username]", "alice-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")

    page.goto("/plans/")
    page.wait_for_selector("#plan-table")
    _shot(page, "plan_list")
    plan = world["plan"]
    page.click(f"a[href='/plans/{plan.pk}/']")
    page.wait_for_selector("#plan-live[hx-trigger]")
    assert page.inner_text("#plan-state") == "Applying"
    assert "1 of 2 deployments moved" in page.inner_text("#plan-progress")
    assert page.is_visible("button[data-action=pause]")
    _shot(page, "plan_detail_applying")

    # CD reports the canary healthy and the plan finishes: the page follows by itself.
    first, second, _ = world["items"]
    PlanItem.objects.filter(pk__in=[first.pk, second.pk]).update(state="healthy")
    Plan.objects.filter(pk=plan.pk).update(state="completed")
    page.wait_for_selector("#plan-state:has-text('Completed')", timeout=10_000)
    assert "2 of 2 deployments moved" in page.inner_text("#plan-progress")
    assert page.get_attribute("#plan-live", "hx-trigger") is None  # polling stopped
    assert not page.is_visible("#plan-actions")
    assert page.get_by_text("libssl.so.1.1 is not on the target's search path").is_visible()
    _shot(page, "plan_detail_completed")

    page.goto("/migration-plans/new/")
    legacy = world["target"].base_image.replaces.get()
    page.check(f"input[name=source][value='{legacy.pk}']")
    page.click("#source-form button[type=submit]")
    page.wait_for_selector("#migration-form")
    assert page.input_value("select[name=target]") == str(world["target"].pk)
    _shot(page, "migration_new")

    page.goto(f"/rebase-plans/new/?from_version={plan.from_version_id}")
    assert page.input_value("select[name=to_version]") == str(plan.to_version_id)
    _shot(page, "rebase_plan_form")
    page.wait_for_timeout(2500)  # a polling request would show up as a console error here
    assert violations == []
