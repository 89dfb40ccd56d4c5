"""The pages work under the Content-Security-Policy (review I3): no violation in Chromium."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_i3_csp_pages_work_without_violations(page, developer, demo_catalog):
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto("/login/")
    page.fill("input[name=username]", "dave-dev")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#catalog-table")

    # The page-size select submits its form from portal.js (it was an inline onchange).
    page.select_option("select[name=page_size]", "50")
    page.wait_for_url("**/base-images/?*page_size=50*")

    for url in ("/jobs/", "/tokens/", "/services/", "/image-requests/"):
        page.goto(url)
        page.wait_for_load_state("networkidle")

    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .info")
    assert violations == []
