"""A user's journey in Debian's Chromium: log in, filter the catalog, open an entry, copy FROM."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.images.factories import ImageVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_filter_open_and_copy_from_line(page, developer, demo_catalog, live_server):
    from images.models import BaseImage

    version = ImageVersionFactory(base_image=BaseImage.objects.get(name="runtime/debian"))

    page.goto("/base-images/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "dave-dev")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#catalog-table")
    assert (
        page.locator("#catalog-table tbody tr").count() == 9
    )  # with runtime/debian-11 (the migration demo)

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
