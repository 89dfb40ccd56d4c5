"""A user's journey in Debian's Chromium: log in, filter the catalog, open an entry, copy FROM."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import PASSWORD
from tests.images.factories import ImageVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the test makes
    # between browser steps are still synchronous, so Django's async guard is lifted here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_login_filter_open_and_copy_from_line(page, developer, demo_catalog, live_server):
    from images.models import BaseImage

    version = ImageVersionFactory(base_image=BaseImage.objects.get(name="runtime/debian"))

    page.goto("/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "dave-dev")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#catalog-table")
    assert page.locator("#catalog-table tbody tr").count() == 8

    page.select_option("select[name=kind]", "runtime")
    page.select_option("select[name=status]", "approved")
    page.click("#catalog-filters button[type=submit]")
    page.wait_for_url("**/base-images/?*kind=runtime*")
    names = page.locator("#catalog-table tbody tr td:first-child a").all_inner_texts()
    assert names == ["runtime/debian", "runtime/openeuler", "scratch"]

    page.click("text=runtime/debian")
    page.wait_for_selector("#from-line")
    expected = f"FROM 127.0.0.1:5000/runtime/debian@{version.digest}"
    assert page.inner_text("#from-line").strip() == expected

    page.click("button[data-copy-target=from-line]")
    page.wait_for_selector("button[data-copy-target=from-line][data-copied]")
    assert page.evaluate("navigator.clipboard.readText()") == expected
