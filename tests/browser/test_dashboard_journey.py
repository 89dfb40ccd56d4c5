"""The dashboard and the search in Debian's Chromium (issue 11): the numbers and their links,
the ECharts chart, the review badge, "/" to search, results, axe-core clean, no CSP
violation; screenshots at desktop and phone width (PORTAL_SCREENSHOT_DIR keeps them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.deployments.dashboard_world import build_world
from tests.deployments.test_dashboard import _request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}


def _shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("PORTAL_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _login(page, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")


def _watch_csp(page) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return violations


def test_dashboard_numbers_links_chart_and_badge(
    page, admin_user, service_team, platform_team, axe, tmp_path
):
    build_world(service_team)
    for n in range(2):
        _request(service_team, f"q{n}", "submitted")
    csp = _watch_csp(page)
    _login(page, admin_user.get_username())
    page.wait_for_url("**/base-images/")
    page.goto("/")
    page.wait_for_selector("#deployments-chart[data-rendered='2']")
    assert page.locator("#deployments-chart canvas").count() >= 1
    assert page.inner_text("#images-by-status [data-status=deprecated] .stat-number") == "1"
    # The badge arrives by htmx after the page.
    page.wait_for_selector("#review-badge")
    assert page.inner_text("#review-badge [aria-hidden]") == "2"
    assert page.inner_text("#review-count") == "2"
    assert page.inner_text("#footprint-table tr[data-environment=prod] .volume-images") == "3"
    assert page.inner_text("#footprint-table tr[data-environment=prod] .image-images") == "4"
    axe(page, exclude=["#deployments-chart"])  # a canvas: its text is the aria-label

    shots = _shots(tmp_path)
    for name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.screenshot(path=str(shots / f"dashboard-{name}.png"), full_page=True)
        # Tables scroll inside their box: the page itself never gets wider than the screen
        # (the navigation's own collapse at phone width is another change's).
        widest = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('main .table-scroll')]"
            ".map(e => e.getBoundingClientRect().right))"
        )
        assert widest <= width + 1, (name, widest)
    page.set_viewport_size({"width": 1366, "height": 900})

    page.click("#risk-table tr[data-team=payments] a[data-risk=eol]")
    page.wait_for_url("**/deployments/?team=payments&eol=true")
    rows = page.locator("#deployment-list-table tbody tr td:first-child").all_inner_texts()
    assert rows == ["ledger"]
    assert page.is_checked("input[name=eol]")
    axe(page)
    page.click("#review-badge")
    page.wait_for_url("**/image-requests/")
    assert csp == []


def test_search_with_slash_results_and_axe(
    page, developer, service_team, platform_team, axe, tmp_path
):
    world = build_world(service_team)
    csp = _watch_csp(page)
    _login(page, developer.get_username())
    page.wait_for_url("**/base-images/")
    page.goto("/")
    page.wait_for_selector("#images-by-status")
    # "/" jumps to the search box; typing "/" inside a field still types it.
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "nav-search"
    page.keyboard.type("orders")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search/?q=orders")
    assert page.locator("#results-services li a").all_inner_texts() == ["orders"]
    assert page.input_value("#nav-search") == "orders"
    axe(page)

    # A digest prefix finds the version; an other team's service stays hidden.
    page.fill("#search-form input[name=q]", world.v_debian.digest[:12])
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results-versions")
    assert page.locator("#results-versions li a").all_inner_texts() == ["runtime/debian:12.2"]
    page.goto("/search/?q=indexer")
    assert page.locator("#no-results").is_visible()
    axe(page)
    page.goto("/search/?q=x")
    assert "at least 2" in page.inner_text("#search-error")

    page.goto("/search/?q=runtime")
    shots = _shots(tmp_path)
    for name, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(shots / f"search-{name}.png"), full_page=True)
    page.click("#results-images li a >> text=runtime/debian")
    page.wait_for_url(f"**/base-images/{world.debian.pk}/")
    assert csp == []
