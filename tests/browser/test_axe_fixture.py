"""The axe-core fixture itself: it finds what it should, under the portal's CSP too."""

from __future__ import annotations

import pytest

from tests.browser.axe import axe_violations, format_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_axe_reports_violations_and_respects_exclude(page, axe):
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main>'
        '<img src="data:," id="no-alt"><a href="#" id="empty-link"></a></main></body></html>'
    )
    found = {v["id"] for v in axe_violations(page)}
    assert {"image-alt", "link-name"} <= found
    text = format_violations(axe_violations(page))
    assert "image-alt" in text and "#no-alt" in text
    assert "image-alt" not in {v["id"] for v in axe_violations(page, exclude=["#no-alt"])}
    with pytest.raises(AssertionError, match="link-name"):
        axe(page)


def test_axe_runs_under_the_portals_csp(page, axe, live_server):
    page.goto("/login/")  # served with script-src 'self': axe is evaluated, not injected
    axe(page)
