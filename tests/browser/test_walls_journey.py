"""Issue 11's walls, walked in Debian's Chromium: the request form, errors, confirmations."""

from __future__ import annotations

import os

import pytest

from tests.browser.test_scans_journey import scanned_world  # noqa: F401 - a fixture
from tests.conftest import PASSWORD

SHOTS = os.environ.get("PORTAL_SCREENSHOTS")  # a directory for screenshots (outside the repo)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOCKERFILE = (
    "FROM runtime/debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n"
    "RUN echo hello > /hello\n"
)


def login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("main")


def test_request_form_shows_each_field_once_and_stores_runtime(page, developer, demo_catalog):
    from images.models import ImageRequest

    login(page, "dave-dev")
    page.goto("/image-requests/new/")
    for name in ("kind", "recipe", "recipe_kind", "name", "os_family"):
        assert page.locator(f"[name={name}]").count() == 1, name
    page.fill("input[name=name]", "runtime/debian-hello")
    page.fill("input[name=tag]", "12-1")
    page.select_option("select[name=kind]", "runtime")
    page.select_option("select[name=recipe_kind]", "dockerfile")
    page.fill("textarea[name=recipe]", DOCKERFILE)
    page.fill("textarea[name=justification]", "a hello file for the smoke tests")
    page.click("button[name=submit][value='1']")
    page.wait_for_url("**/image-requests/*/")
    stored = ImageRequest.objects.get(name="runtime/debian-hello")
    assert stored.kind == "runtime"
    assert stored.recipe_kind == "dockerfile"
    assert stored.tag == "12-1"
    assert stored.state == "submitted"


PHONE = {"width": 390, "height": 844}


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_phone_width_pages_do_not_widen_and_nav_collapses(
    page,
    developer,
    scanned_world,  # noqa: F811 - the imported fixture
):
    widths: dict[str, int] = {}
    login(page, "dave-dev")
    new = scanned_world["new"]
    urls = [
        "/base-images/",
        f"/base-images/{scanned_world['image'].pk}/",
        f"/image-versions/{new.pk}/",
        "/advisories/CVE-2024-0001/",
        "/advisories/",
        "/services/",
        "/services/pay-api/",
        "/image-requests/",
        "/image-requests/new/",
        "/waivers/",
        "/plans/",
        "/jobs/",
        "/tokens/",
        "/teams/",
        "/dockerfile-check/",
    ]
    page.set_viewport_size(PHONE)
    for url in urls:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        widths[url] = page.evaluate("document.documentElement.scrollWidth")
        _shot(page, "phone" + url.replace("/", "_"))
    too_wide = {u: w for u, w in widths.items() if w > PHONE["width"]}
    assert too_wide == {}, widths

    # The navigation is one "Menu" button until opened.
    page.goto("/base-images/")
    links = page.locator("#nav-links")
    assert not links.is_visible()
    page.click("#nav-toggle")
    assert links.is_visible()
    assert page.get_attribute("#nav-toggle", "aria-expanded") == "true"
    page.click("#nav-links >> text=Services")
    page.wait_for_url("**/services/")

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/base-images/")
    assert page.locator("#nav-links").is_visible()
    assert not page.locator("#nav-toggle").is_visible()


def test_build_panel_follows_the_job_to_publish_without_reload(
    page, admin_user, developer, service_team, demo_catalog
):
    from images.models import BaseImage, ImageRequest
    from portal.models import Job
    from tests.images.factories import ImageVersionFactory

    job = Job.objects.create(kind="image_build", state="running", progress=40, step="buildah")
    request = ImageRequest.objects.create(
        name="runtime/debian-hello",
        tag="12-1",
        kind="runtime",
        os_family="debian",
        os_version="12",
        recipe_kind="dockerfile",
        recipe=DOCKERFILE,
        justification="hello",
        state="building",
        team=service_team,
        requested_by=developer,
        build_job=job,
    )
    login(page, "alice-admin")
    page.goto(f"/image-requests/{request.pk}/")
    page.wait_for_selector("#build")
    assert page.locator("text=Publish candidate").count() == 0
    page.evaluate("window.__same_page = true")

    # The worker finishes: a candidate version, the request in scanning, the job succeeded.
    version = ImageVersionFactory(
        base_image=BaseImage.objects.get(name="runtime/debian"), tag="12-1", state="candidate"
    )
    ImageRequest.objects.filter(pk=request.pk).update(state="scanning", image_version=version)
    Job.objects.filter(pk=job.pk).update(state="succeeded", progress=100, step="pushed")

    page.wait_for_selector("button:has-text('Publish candidate')")
    assert "scanning" in page.inner_text("h1")
    assert "succeeded" in page.inner_text("#build")


def test_destructive_actions_ask_and_say_what_follows(page, developer, service_team, make_token):
    from portal.models import ApiToken

    make_token(service_team, ["images:read"], user=developer)
    token = ApiToken.objects.get()
    login(page, "dave-dev")
    page.goto("/tokens/")
    dialogs: list[str] = []

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("button[name=revoke]")
    page.wait_for_timeout(300)
    assert "cannot be undone" in dialogs[0]
    token.refresh_from_db()
    assert token.revoked_at is None  # dismissed: nothing happened

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[name=revoke]")
    page.wait_for_selector(".badge-revoked")
    token.refresh_from_db()
    assert token.revoked_at is not None
    _shot(page, "tokens-revoked")


def test_first_run_banner_follows_the_demo_builds(page, developer, demo_catalog):
    from django.core.cache import cache

    from images.demo import DEMO_BUILDS
    from images.models import BaseImage
    from images.services.builds import build_idempotency_key
    from portal.models import Job
    from tests.images.factories import ImageVersionFactory

    cache.clear()
    for build in DEMO_BUILDS:
        Job.objects.create(
            kind="images.build",
            state="running",
            progress=30,
            step="mmdebstrap",
            idempotency_key=build_idempotency_key(build.image, build.tag),
        )
    login(page, "dave-dev")
    page.goto("/base-images/")
    banner = page.locator("#demo-banner")
    assert banner.is_visible()
    assert "runtime/debian:12" in banner.inner_text() and "30%" in banner.inner_text()
    _shot(page, "demo-banner-1366")

    first = DEMO_BUILDS[0]
    ImageVersionFactory(base_image=BaseImage.objects.get(name=first.image), tag=first.tag)
    page.wait_for_selector("#demo-banner li:has-text('ready')", timeout=20_000)

    for build in DEMO_BUILDS[1:]:
        ImageVersionFactory(base_image=BaseImage.objects.get(name=build.image), tag=build.tag)
    page.wait_for_selector("#demo-banner", state="detached", timeout=20_000)


def test_image_page_used_by_panel_loads(
    page,
    admin_user,
    scanned_world,  # noqa: F811 - the imported fixture
):
    login(page, "alice-admin")
    page.goto(f"/base-images/{scanned_world['image'].pk}/")
    page.wait_for_selector("#used-by-table")
    assert "pay-api" in page.inner_text("#used-by-table")
    assert "image mode" in page.inner_text("#used-by-environments")
    page.goto(f"/image-versions/{scanned_world['new'].pk}/")
    page.wait_for_selector("#used-by-table")
    assert page.locator("#used-by-table tbody tr").count() == 1


def test_changed_pages_at_desktop_and_phone_width(
    page,
    admin_user,
    developer,
    scanned_world,  # noqa: F811 - the imported fixture
):
    """The pages this issue changed render at 1366 and 390 px without widening the page and
    without a CSP violation (screenshots with PORTAL_SCREENSHOTS=DIR)."""
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    new = scanned_world["new"]
    pages = {
        "teams": "/teams/",
        "team": "/teams/payments/",
        "request-form": "/image-requests/new/",
        "base-image": f"/base-images/{scanned_world['image'].pk}/",
        "revoke": f"/image-versions/{new.pk}/revoke/",
        "service": "/services/pay-api/",
        "not-found": "/no-such-page/",
    }
    login(page, "alice-admin")
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in pages.items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
            _shot(page, f"{name}-{width}")
    page.goto(f"/image-versions/{new.pk}/revoke/")
    page.wait_for_selector("#used-by-table")
    assert "pay-api" in page.inner_text("#revoke-impact")
    # A developer's refusal names the role and who holds it.
    page.context.clear_cookies()
    login(page, "dave-dev")
    response = page.goto(f"/image-versions/{new.pk}/revoke/")
    assert response is not None and response.status == 403
    assert "platform-admin role" in page.inner_text("#error-message")
    assert "alice-admin" in page.inner_text("#error-admins")
    _shot(page, "forbidden-390")
    assert violations == []
