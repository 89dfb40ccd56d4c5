"""The pages that show scans: the image version page, scan state on the catalog and the base
image page, the findings chart's data, and the CVE search page with the blast radius."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from images.models import Finding
from images.scan_selectors import base_image_findings_history
from portal.choices import Role
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory
from tests.images import scan_data
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scanned(platform_team):
    image = BaseImageFactory(name="runtime/debian-scan", owner_team=platform_team)
    sbom = scan_data.sbom()
    sbom.package_count = 120
    sbom.distro_name = "Debian GNU/Linux 12 (bookworm)"
    sbom.save()
    version = ImageVersionFactory(
        base_image=image,
        sbom=sbom,
        scan_state="scanned",
        scanned_at=timezone.now(),
        scan_summary={"open": 30, "critical": 1, "high": 29, "medium": 0, "low": 0, "fixable": 2},
    )
    cve = scan_data.advisory("CVE-2024-0001", severity="critical", summary="glibc overflow")
    deb = scan_data.advisory(
        "DEBIAN-CVE-2024-0001", upstream=("CVE-2024-0001",), severity="critical"
    )
    libc = scan_data.package("libc6", "2.36-9", source="glibc")
    scan_data.finding(sbom, libc, deb, fixed_version="2.36-9+deb12u4")
    for n in range(29):
        adv = scan_data.advisory(f"DEBIAN-CVE-2023-{n:04d}", severity="high")
        scan_data.finding(sbom, scan_data.package(f"lib{n:02d}"), adv, fix_state="not_fixed")
    return {"image": image, "version": version, "cve": cve}


def _login(client: Client, user) -> Client:
    client.force_login(user)
    return client


def test_version_page_lists_findings_worst_first(client, developer, scanned):
    version = scanned["version"]
    html = _login(client, developer).get(f"/image-versions/{version.pk}/").content.decode()
    assert version.digest in html
    assert "DEBIAN-CVE-2024-0001" in html and "2.36-9+deb12u4" in html
    assert html.index("DEBIAN-CVE-2024-0001") < html.index("DEBIAN-CVE-2023-0000")
    assert 'class="badge badge-critical"' in html
    assert f"/api/v1/image-versions/{version.pk}/sbom/?format=cyclonedx-json" in html
    assert "syft-json" in html
    assert (
        f"/waivers/new/?advisory=DEBIAN-CVE-2024-0001&amp;image_version={version.pk}&amp;package=libc6"
        in html
    )
    assert "/advisories/DEBIAN-CVE-2024-0001/" in html
    assert 'rel="next"' in html and 'rel="prev"' not in html and "Page 1 of" not in html
    assert "Next →" in html and "Older →" not in html  # ranked worst first, not by time
    assert "30 open" in html  # the total is the scan's summary, not a COUNT(*) of the page
    assert 'id="scan-now"' not in html  # a developer of another team may not scan


def _link(html: str, rel: str) -> str:
    match = re.search(rf'<a href="\?([^"]*)" rel="{rel}">', html)
    assert match, f"no {rel} link"
    return unescape(match.group(1))


def test_version_page_filters_survive_pagination(client, developer, scanned):
    version = scanned["version"]
    url = f"/image-versions/{version.pk}/"
    html = (
        _login(client, developer)
        .get(f"{url}?severity=high&fix_state=not_fixed&page_size=25")
        .content.decode()
    )
    assert "DEBIAN-CVE-2024-0001" not in html and "DEBIAN-CVE-2023-0028" not in html
    older = _link(html, "next")
    assert older.startswith("severity=high&fix_state=not_fixed&page_size=25&cursor=")
    second = client.get(f"{url}?{older}").content.decode()
    assert "DEBIAN-CVE-2023-0028" in second and "DEBIAN-CVE-2023-0000" not in second
    assert 'rel="next"' not in second
    back = client.get(f"{url}?{_link(second, 'prev')}").content.decode()
    assert "DEBIAN-CVE-2023-0000" in back and "DEBIAN-CVE-2023-0028" not in back


def test_version_page_stale_cursor_shows_the_first_page(client, developer, scanned):
    html = (
        _login(client, developer)
        .get(f"/image-versions/{scanned['version'].pk}/?cursor=stale&page=3")
        .content.decode()
    )
    assert "DEBIAN-CVE-2024-0001" in html


def test_version_page_bad_filters_are_reported_not_500(client, developer, scanned):
    response = _login(client, developer).get(
        f"/image-versions/{scanned['version'].pk}/?severity=bogus"
    )
    assert response.status_code == 200
    assert "not understood" in response.content.decode()
    assert client.get("/image-versions/999999/").status_code == 404


@pytest.mark.parametrize(
    ("state", "error", "expected"),
    [
        ("unscanned", "", "Not scanned yet"),
        ("queued", "", "Scan in progress"),
        ("failed", "syft exited with status 1: manifest unknown", "The last scan failed"),
    ],
)
def test_version_page_empty_states(client, make_user, platform_team, state, error, expected):
    maintainer = make_user("mia", platform_team, Role.MAINTAINER)
    version = ImageVersionFactory(
        base_image=BaseImageFactory(owner_team=platform_team), scan_state=state, scan_error=error
    )
    html = _login(client, maintainer).get(f"/image-versions/{version.pk}/").content.decode()
    assert expected in html
    assert 'id="scan-now"' in html
    if error:
        assert "manifest unknown" in html
    if state == "queued":
        assert "disabled" in html.split('id="scan-now"')[1].split(">")[0]


def test_a_failed_scans_error_shows_in_the_readers_language(client, make_user, platform_team):
    from tests.i18n_support import compile_catalog

    compile_catalog()
    maintainer = make_user("mia", platform_team, Role.MAINTAINER)
    error = "ABI facts of harbor.local/runtime/debian@sha256:ab: no ELF files"
    version = ImageVersionFactory(
        base_image=BaseImageFactory(owner_team=platform_team), scan_state="failed", scan_error=error
    )
    url = f"/image-versions/{version.pk}/"
    zh = _login(client, maintainer).get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "读取 harbor.local/runtime/debian@sha256:ab 的 ABI 信息时出错：no ELF files" in zh
    assert error in client.get(url).content.decode()


def test_version_page_scanned_without_findings(client, developer, platform_team):
    sbom = scan_data.sbom()
    version = ImageVersionFactory(sbom=sbom, scan_state="scanned")
    html = _login(client, developer).get(f"/image-versions/{version.pk}/").content.decode()
    assert "No open findings" in html
    filtered = client.get(f"/image-versions/{version.pk}/?severity=critical").content.decode()
    assert "No finding matches these filters" in filtered


def test_scan_now_is_refused_to_non_maintainers(client, developer, scanned):
    response = _login(client, developer).post(f"/image-versions/{scanned['version'].pk}/scan/")
    assert response.status_code == 403


def test_scan_now_starts_the_scan_job(client, admin_user, scanned):
    from portal.models import Job

    version = ImageVersionFactory(base_image=scanned["image"])
    response = _login(client, admin_user).post(f"/image-versions/{version.pk}/scan/")
    assert response.status_code == 302
    assert Job.objects.filter(kind="images.scan").exists()


def test_catalog_and_detail_show_scan_state_and_counts(client, developer, scanned):
    _login(client, developer)
    catalog = client.get("/base-images/?q=debian-scan").content.decode()
    row = catalog.split("runtime/debian-scan")[1]
    assert "scanned" in row and "1 C" in row and "29 H" in row and "30 open" in row
    detail = client.get(f"/base-images/{scanned['image'].pk}/").content.decode()
    assert f'href="/image-versions/{scanned["version"].pk}/"' in detail
    assert "30 open, 2 fixable" in detail
    assert 'id="findings-chart"' in detail and 'id="findings-history"' in detail
    assert "vendor/chartjs/chart.umd.min.js" in detail


def test_catalog_query_count_is_flat(client, developer, scanned, django_assert_max_num_queries):
    _login(client, developer)
    with django_assert_max_num_queries(8) as few:
        client.get("/base-images/")
    for _ in range(10):
        ImageVersionFactory(scan_state="scanned", scan_summary={"open": 1, "low": 1})
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get("/base-images/")


def test_findings_history_counts_open_findings_per_day(platform_team):
    image = BaseImageFactory(owner_team=platform_team)
    today = dt.date(2026, 6, 30)
    at = lambda d: dt.datetime.combine(d, dt.time(12), tzinfo=dt.UTC)  # noqa: E731
    v1 = ImageVersionFactory(base_image=image, sbom=scan_data.sbom())
    v2 = ImageVersionFactory(base_image=image, sbom=scan_data.sbom())
    other = ImageVersionFactory(sbom=scan_data.sbom())  # another image: not counted
    libc = scan_data.package("libc6")
    crit = scan_data.advisory("CVE-1", severity="critical")
    low = scan_data.advisory("CVE-2", severity="low")
    # The same advisory in the same package on two versions counts once.
    scan_data.finding(v1.sbom, libc, crit, first_seen=at(today - dt.timedelta(days=10)))
    scan_data.finding(v2.sbom, libc, crit, first_seen=at(today - dt.timedelta(days=5)))
    # Resolved three days ago: open on days -20 … -4.
    scan_data.finding(
        v1.sbom,
        scan_data.package("zlib1g"),
        low,
        first_seen=at(today - dt.timedelta(days=20)),
        resolved_at=at(today - dt.timedelta(days=3)),
    )
    scan_data.finding(other.sbom, libc, low, first_seen=at(today - dt.timedelta(days=30)))
    history = base_image_findings_history(image, days=30, today=today)
    assert len(history["labels"]) == 30 and history["labels"][-1] == "2026-06-30"
    critical, low_series = history["series"]["critical"], history["series"]["low"]
    # Index -1 is today, so a finding first seen ten days ago counts from index -11.
    assert critical[-12] == 0 and critical[-11] == 1 and critical[-1] == 1
    assert max(critical) == 1
    assert low_series[-22] == 0 and low_series[-21] == 1 and low_series[-5] == 1
    assert low_series[-4] == 0  # resolved three days ago: not open at that day's end
    assert history["total"] == 1
    assert Finding.objects.count() == 4


# --- the CVE page -------------------------------------------------------------------------


@pytest.fixture
def deployed(scanned, service_team):
    env = EnvironmentFactory(name="prod", namespace="apps-prod")
    svc = ServiceFactory(name="pay-api", team=service_team)
    DeploymentFactory(service=svc, environment=env, runtime_version=scanned["version"])
    from portal.models import Team

    orders = Team.objects.create(name="orders")
    DeploymentFactory(
        service=ServiceFactory(name="ord-web", team=orders),
        environment=env,
        runtime_version=scanned["version"],
        mode="image",
    )
    return scanned


def test_cve_page_search_and_blast_radius(client, admin_user, deployed):
    _login(client, admin_user)
    html = client.get("/advisories/?q=cve-2024-0001").content.decode()
    assert 'id="advisory-results"' in html and "DEBIAN-CVE-2024-0001" in html
    assert 'id="blast-radius"' in html  # the exact hit's radius is shown at once
    assert 'id="count-deployments">2<' in html and 'id="count-teams">2<' in html
    assert "ord-web" in html and "pay-api" in html
    detail = client.get("/advisories/DEBIAN-CVE-2024-0001/").content.decode()
    assert 'id="radius-environments"' in detail and "runtime/debian-scan" in detail
    assert 'id="advisory-record"' in detail and "CVE-2024-0001 <small" in detail
    assert "/api/v1/advisories/DEBIAN-CVE-2024-0001/impact/" in detail


def test_cve_page_scoped_to_the_team(client, developer, deployed):
    html = _login(client, developer).get("/advisories/CVE-2024-0001/").content.decode()
    assert 'id="count-deployments">1<' in html
    assert "pay-api" in html and "ord-web" not in html and "orders" not in html
    assert "your teams" in html


def test_cve_page_empty_states(client, developer, scanned):
    _login(client, developer)
    intro = client.get("/advisories/").content.decode()
    assert 'id="advisory-intro"' in intro
    none = client.get("/advisories/?q=CVE-1999-0000").content.decode()
    assert 'id="advisory-none"' in none
    assert client.get("/advisories/CVE-1999-0000/").status_code == 404
    assert client.get("/advisories/" + "x" * 150 + "/").status_code == 404
    bad = client.get("/advisories/?severity=nope")
    assert bad.status_code == 200 and "not understood" in bad.content.decode()
    # Known, scanned nowhere: the radius says so.
    scan_data.advisory("CVE-2030-0002")
    empty = client.get("/advisories/CVE-2030-0002/").content.decode()
    assert 'id="radius-empty"' in empty


def test_cve_page_needs_login(client):
    response = client.get("/advisories/?q=CVE-2024-0001")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_history_json_is_in_the_page(client, developer, scanned):
    html = _login(client, developer).get(f"/base-images/{scanned['image'].pk}/").content.decode()
    blob = html.split('id="findings-history" type="application/json">')[1].split("</script>")[0]
    data = json.loads(blob)
    assert data["series"]["critical"][-1] == 1 and data["series"]["high"][-1] == 29


# --- the permission matrix of the new pages -----------------------------------------------

PAGE_CALLERS = ("anon", "viewer", "developer", "maintainer", "admin", "token")
PAGE_MATRIX = [
    ("GET", "/image-versions/{version}/", (302, 200, 200, 200, 200, 302)),
    ("GET", "/image-versions/999999/", (302, 404, 404, 404, 404, 302)),
    # Scanning is for the image's maintainers (its owner team) and platform admins; a
    # maintainer of a service team is refused. (The admin's scan is tested above: it needs
    # the scanner's service.)
    ("POST", "/image-versions/{version}/scan/", (302, 403, 403, 403, None, 302)),
    ("GET", "/image-versions/{version}/scan/", (302, 405, 405, 405, 405, 302)),
    ("GET", "/advisories/", (302, 200, 200, 200, 200, 302)),
    ("GET", "/advisories/?q=CVE-2024-0001", (302, 200, 200, 200, 200, 302)),
    ("GET", "/advisories/CVE-2024-0001/", (302, 200, 200, 200, 200, 302)),
    ("GET", "/advisories/CVE-1999-0000/", (302, 404, 404, 404, 404, 302)),
]


@pytest.mark.parametrize(("method", "path", "expect"), PAGE_MATRIX, ids=lambda v: str(v))
def test_page_permission_matrix(
    method, path, expect, scanned, make_user, service_team, admin_user, make_token
):
    users = {
        role: make_user(f"pm-{role}", service_team, role)
        for role in ("viewer", "developer", "maintainer")
    }
    users["admin"] = admin_user
    path = path.format(version=scanned["version"].pk)
    failures = []
    for caller, status in zip(PAGE_CALLERS, expect, strict=True):
        if status is None:
            continue
        if caller == "token":
            client = Client(
                HTTP_AUTHORIZATION=f"Bearer {make_token(service_team, ['images:read'])}"
            )
        else:
            client = Client()
            if caller in users:
                client.force_login(users[caller])
        response = getattr(client, method.lower())(path)
        if response.status_code != status:
            failures.append(f"{caller}: {response.status_code} != {status}")
    assert not failures, failures


def test_version_and_cve_pages_query_counts_are_flat(
    client, developer, deployed, django_assert_max_num_queries
):
    _login(client, developer)
    version = deployed["version"]
    with django_assert_max_num_queries(14) as page_queries:
        client.get(f"/image-versions/{version.pk}/?page_size=10")
    with django_assert_max_num_queries(24) as cve_queries:
        client.get("/advisories/CVE-2024-0001/")
    for n in range(20):
        adv = scan_data.advisory(f"DEBIAN-CVE-2022-{n:04d}", aliases=(f"CVE-2022-{n:04d}",))
        scan_data.finding(version.sbom, scan_data.package(f"extra{n}"), adv)
        svc = ServiceFactory(name=f"more{n}", team=developer.memberships.get().team)
        DeploymentFactory(
            service=svc,
            environment=EnvironmentFactory(name=f"env{n}", namespace=f"ns{n}"),
            runtime_version=version,
        )
    for query in ("?page_size=100", "?page_size=10"):
        with django_assert_max_num_queries(len(page_queries.captured_queries)):
            html = client.get(f"/image-versions/{version.pk}/{query}").content.decode()
    with django_assert_max_num_queries(len(page_queries.captured_queries)):
        client.get(f"/image-versions/{version.pk}/?{_link(html, 'next')}")  # a deeper page
    with django_assert_max_num_queries(len(cve_queries.captured_queries)):
        html = client.get("/advisories/CVE-2024-0001/").content.decode()
    assert 'id="count-deployments">21<' in html
