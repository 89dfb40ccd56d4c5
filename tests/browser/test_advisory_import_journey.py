"""A platform admin imports OSV advisories from the page (real Chromium, no CSP violation)."""

from __future__ import annotations

import os

import pytest

from images.models import AdvisoryImport
from portal.jobs import job_execute
from tests.conftest import PASSWORD
from tests.images.osv_import import FIXTURES, GOOD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_uploads_osv_records_and_sees_the_counts(page, admin_user, settings, tmp_path):
    settings.PORTAL_ADVISORY_IMPORT_ROOTS = [str(FIXTURES)]
    settings.PORTAL_ADVISORY_UPLOAD_DIR = str(tmp_path / "uploads")
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
    page.click("text=Advisory imports")
    page.wait_for_selector("#advisory-import-form")
    page.set_input_files("input[name=file]", str(GOOD / "list/pypi-and-ubuntu.json"))
    page.click("#advisory-import-form button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    upload = AdvisoryImport.objects.get()
    assert job_execute(upload.job_id) == "succeeded"

    page.goto("/advisory-imports/")
    page.fill("input[name=path]", str(FIXTURES / "bad"))
    page.click("#advisory-import-form button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    assert job_execute(AdvisoryImport.objects.latest("pk").job_id) == "succeeded"

    page.goto("/advisory-imports/")
    page.click("text=9 errors")
    assert page.is_visible("text=no 'modified'")
    rows = page.locator("table tbody tr")
    assert rows.count() == 2
    assert "Server path" in rows.nth(0).inner_text() and "Upload" in rows.nth(1).inner_text()
    if os.environ.get("BIP_SCREENSHOTS"):  # a look at the page when wanted
        shot = os.path.join(os.environ["BIP_SCREENSHOTS"], "advisory-imports.png")
        page.screenshot(path=shot, full_page=True)

    page.goto("/advisory-imports/")
    page.fill("input[name=path]", "/etc/passwd")
    page.click("#advisory-import-form button[type=submit]")
    page.wait_for_selector("text=outside the allowed import roots")
    assert AdvisoryImport.objects.count() == 2
    assert violations == []
