"""Seeing scans in Chromium: the findings chart draws (Chart.js from npm, no CDN, no CSP
violation), the version page lists findings, the CVE page shows the blast radius."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory
from tests.images import scan_data
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("PORTAL_SCREENSHOTS")  # a directory for screenshots (outside the repo)


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


@pytest.fixture
def scanned_world(platform_team, service_team):
    image = BaseImageFactory(name="runtime/debian", owner_team=platform_team)
    now = timezone.now()
    old = ImageVersionFactory(
        base_image=image, tag="12.5", sbom=scan_data.sbom(), state="superseded"
    )
    new = ImageVersionFactory(
        base_image=image,
        tag="12.6",
        sbom=scan_data.sbom(),
        scan_state="scanned",
        scan_summary={"open": 3, "critical": 1, "high": 1, "medium": 1, "low": 0, "fixable": 2},
    )
    cve = scan_data.advisory("CVE-2024-0001", severity="critical", summary="glibc: overflow")
    deb = scan_data.advisory(
        "DEBIAN-CVE-2024-0001",
        upstream=("CVE-2024-0001",),
        severity="critical",
        affected=(("Debian:12", "glibc"),),
    )
    libc = scan_data.package("libc6", "2.36-9", source="glibc")
    for n, (severity, days) in enumerate([("high", 60), ("medium", 40), ("low", 80)]):
        adv = scan_data.advisory(f"DEBIAN-CVE-2023-{n:04d}", severity=severity)
        scan_data.finding(
            new.sbom,
            scan_data.package(f"lib{n}"),
            adv,
            first_seen=now - dt.timedelta(days=days),
            resolved_at=now - dt.timedelta(days=10) if severity == "low" else None,
        )
    scan_data.finding(old.sbom, libc, deb, first_seen=now - dt.timedelta(days=30))
    scan_data.finding(new.sbom, libc, deb, first_seen=now - dt.timedelta(days=20))
    env = EnvironmentFactory(name="prod", namespace="apps-prod")
    staging = EnvironmentFactory(name="staging", namespace="apps-staging")
    svc = ServiceFactory(name="pay-api", team=service_team)
    DeploymentFactory(service=svc, environment=env, runtime_version=new)
    DeploymentFactory(service=svc, environment=staging, runtime_version=old, mode="image")
    return {"image": image, "new": new, "cve": cve}


def test_chart_version_page_and_blast_radius(page, developer, scanned_world):
    violations: list[str] = []
    errors: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/login/")
    page.fill("input[name=username]", "dave-dev")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#catalog-table")
    assert "1 C" in page.inner_text("#catalog-table")

    page.goto(f"/base-images/{scanned_world['image'].pk}/")
    page.wait_for_selector("#findings-chart[data-rendered]")
    assert page.get_attribute("#findings-chart", "data-rendered") == "4"  # 4 severities drawn
    box = page.locator("#findings-chart").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    # The canvas has pixels on it (not a blank element).
    painted = page.evaluate(
        """() => { const c = document.getElementById('findings-chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert painted > 1000
    _shot(page, "base-image-chart")

    page.click("text=12.6")
    page.wait_for_selector("#findings-table")
    rows = page.locator("#findings-table tbody tr")
    assert rows.count() == 3
    assert "DEBIAN-CVE-2024-0001" in rows.nth(0).inner_text()
    _shot(page, "image-version")

    rows.nth(0).locator("a", has_text="DEBIAN-CVE-2024-0001").click()
    page.wait_for_selector("#blast-radius")
    assert page.inner_text("#count-deployments") == "2"
    assert page.inner_text("#count-image-versions") == "2"
    page.click("#advisory-record summary")
    assert "glibc" in page.inner_text("#advisory-affected")
    _shot(page, "advisory-detail")

    page.goto("/advisories/")
    page.fill("#advisory-search input[name=q]", "cve-2024-0001")
    page.click("#advisory-search button[type=submit]")
    page.wait_for_selector("#blast-radius")
    envs = page.locator("#radius-environments tbody tr").all_inner_texts()
    assert [e.split("\t")[0] for e in envs] == ["prod", "staging"]
    _shot(page, "cve-search")
    assert violations == [] and errors == []


def test_version_page_follows_a_running_scan(page, developer, platform_team):
    version = ImageVersionFactory(
        base_image=BaseImageFactory(owner_team=platform_team), scan_state="scanning"
    )
    page.goto("/login/")
    page.fill("input[name=username]", "dave-dev")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#catalog-table")
    page.goto(f"/image-versions/{version.pk}/")
    assert "Scan in progress" in page.inner_text("#findings-empty")

    # The scan ends (as the scanner would record it): the page shows it without a reload.
    sbom = scan_data.sbom()
    adv = scan_data.advisory("DEBIAN-CVE-2024-4242", severity="high")
    scan_data.finding(sbom, scan_data.package("libexpat1"), adv)
    version.sbom, version.scan_state = sbom, "scanned"
    version.scan_summary = {"open": 1, "high": 1, "fixable": 1}
    version.save()
    page.wait_for_selector("#findings-table", timeout=10_000)
    assert "DEBIAN-CVE-2024-4242" in page.inner_text("#findings-table")
    assert page.get_attribute("#version-page", "hx-trigger") is None  # polling stopped
