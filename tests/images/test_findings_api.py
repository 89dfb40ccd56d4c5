"""The findings and advisory API: filters, ordering, pagination, bad input, the matrix."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from images.models import ImageVersion
from portal.choices import Role
from portal.models import Membership, Team
from tests.images import scan_data
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def scanned(platform_team: Team) -> dict[str, object]:
    """A scanned version with five findings of known shape (one resolved)."""
    sbom = scan_data.sbom()
    version = ImageVersionFactory(sbom=sbom, scan_state="scanned")
    glibc = scan_data.package("libc6", "2.36-9", source="glibc")
    openssl = scan_data.package("libssl3", "3.0.11-1", source="openssl")
    perl = scan_data.package("perl-base", "5.36.0-7", source="perl")
    zlib = scan_data.package("zlib1g", "1:1.2.13.dfsg-1", source="zlib")
    cve = scan_data.advisory("CVE-2024-0001", severity="critical", summary="glibc overflow")
    deb = scan_data.advisory(
        "DEBIAN-CVE-2024-0001", upstream=("CVE-2024-0001",), severity="critical"
    )
    ssl = scan_data.advisory("DSA-5500-1", aliases=("CVE-2024-0002",), severity="high")
    perl_adv = scan_data.advisory("DEBIAN-CVE-2023-9999", severity="medium")
    old = scan_data.advisory("DEBIAN-CVE-2020-1111", severity="low")
    findings = {
        "glibc_fixed": scan_data.finding(sbom, glibc, deb, fix_state="fixed"),
        "glibc_unfixed": scan_data.finding(sbom, glibc, cve, fix_state="not_fixed"),
        "ssl": scan_data.finding(sbom, openssl, ssl, fix_state="fixed"),
        "perl": scan_data.finding(sbom, perl, perl_adv, fix_state="wont_fix"),
        "zlib_resolved": scan_data.finding(sbom, zlib, old, resolved=True),
    }
    return {"version": version, "findings": findings}


@pytest.fixture
def viewer_client(make_user, service_team) -> APIClient:
    client = APIClient()
    client.force_login(make_user("vic", service_team, Role.VIEWER))
    return client


def _url(version: ImageVersion, query: str = "") -> str:
    return f"/api/v1/image-versions/{version.pk}/findings/{query}"


def test_findings_are_ordered_worst_first_fixable_first(viewer_client, scanned):
    body = viewer_client.get(_url(scanned["version"])).json()
    assert "count" not in body and body["next"] is None and body["previous"] is None
    assert body["scan_state"] == "scanned" and body["scan_summary"] == {}
    rows = [(r["advisory"]["id"], r["severity"], r["fix_state"]) for r in body["results"]]
    assert rows == [
        ("DEBIAN-CVE-2024-0001", "critical", "fixed"),
        ("CVE-2024-0001", "critical", "not_fixed"),
        ("DSA-5500-1", "high", "fixed"),
        ("DEBIAN-CVE-2023-9999", "medium", "wont_fix"),
    ]
    first = body["results"][0]
    assert first["package"]["name"] == "libc6"
    assert first["package"]["source_name"] == "glibc"
    assert first["installed_version"] == "2.36-9"
    assert first["fixed_version"] == "2.0-1"
    assert first["advisory"]["aliases"] == ["CVE-2024-0001"]
    assert first["waived"] is False and first["waiver"] is None
    assert {"first_seen", "last_seen"} <= set(first)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?severity=critical", {"DEBIAN-CVE-2024-0001", "CVE-2024-0001"}),
        ("?severity=HIGH,medium", {"DSA-5500-1", "DEBIAN-CVE-2023-9999"}),
        ("?fix_state=fixed", {"DEBIAN-CVE-2024-0001", "DSA-5500-1"}),
        ("?package=ssl", {"DSA-5500-1"}),
        ("?package=LIBC", {"DEBIAN-CVE-2024-0001", "CVE-2024-0001"}),
        ("?waived=false&severity=medium", {"DEBIAN-CVE-2023-9999"}),
        ("?waived=true", set()),
        (
            "?include_resolved=true&severity=low",
            {"DEBIAN-CVE-2020-1111"},
        ),
    ],
)
def test_findings_filters(viewer_client, scanned, query, expected):
    response = viewer_client.get(_url(scanned["version"], query))
    assert response.status_code == 200, response.json()
    assert {r["advisory"]["id"] for r in response.json()["results"]} == expected


def test_findings_paginate_by_cursor_in_order_keeping_the_filters(viewer_client, scanned):
    """Keyset pages (no count, no page number): `next` and `previous` carry the filters."""
    query = "?include_resolved=true&page_size=2"
    first = viewer_client.get(_url(scanned["version"], query)).json()
    assert [r["advisory"]["id"] for r in first["results"]] == [
        "DEBIAN-CVE-2024-0001",
        "CVE-2024-0001",
    ]
    assert "count" not in first and first["previous"] is None
    assert "include_resolved=true" in first["next"] and "cursor=" in first["next"]
    second = viewer_client.get(first["next"]).json()
    assert [r["advisory"]["id"] for r in second["results"]] == [
        "DSA-5500-1",
        "DEBIAN-CVE-2023-9999",
    ]
    third = viewer_client.get(second["next"]).json()
    assert [r["advisory"]["id"] for r in third["results"]] == ["DEBIAN-CVE-2020-1111"]
    assert third["next"] is None
    back = viewer_client.get(third["previous"]).json()
    assert back["results"] == second["results"]
    assert viewer_client.get(back["previous"]).json()["results"] == first["results"]


def test_findings_cursor_orders_within_a_severity(viewer_client, scanned):
    """Ties on severity and fix state are broken by package name, then id, across pages."""
    sbom = scanned["version"].sbom
    for name in ("b-pkg", "a-pkg", "c-pkg"):
        pkg = scan_data.package(name, "1.0-1")
        adv = scan_data.advisory(f"DEBIAN-CVE-2025-{name}", severity="high")
        scan_data.finding(sbom, pkg, adv, fix_state="not_fixed")
    names: list[str] = []
    url: str | None = _url(scanned["version"], "?severity=high&page_size=1")
    while url:
        body = viewer_client.get(url).json()
        names += [r["package"]["name"] for r in body["results"]]
        url = body["next"]
    assert names == ["libssl3", "a-pkg", "b-pkg", "c-pkg"]


def test_findings_query_count_does_not_grow_with_the_page(
    viewer_client, scanned, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12) as one:
        first = viewer_client.get(_url(scanned["version"], "?page_size=1")).json()
    with django_assert_max_num_queries(len(one.captured_queries)):
        viewer_client.get(_url(scanned["version"], "?page_size=200"))
    with django_assert_max_num_queries(len(one.captured_queries)):
        viewer_client.get(first["next"])  # a cursor page: the same queries


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?severity=bad", "severity"),
        ("?severity=critical,,nope", "severity"),
        ("?fix_state=maybe", "fix_state"),
        ("?waived=perhaps", "waived"),
        ("?include_resolved=2", "include_resolved"),
        ("?package=" + "x" * 300, "package"),
        ("?package=a%00b", "NUL"),  # refused by the middleware for every URL
        ("?page=2", "page"),  # cursor pages: a page number is refused, not ignored
        ("?cursor=not-a-cursor", "cursor"),
        ("?page_size=x", "page_size"),
    ],
)
def test_findings_bad_filters_are_400_or_404(viewer_client, scanned, query, field):
    response = viewer_client.get(_url(scanned["version"], query))
    body = response.json()
    assert set(body) >= {"detail", "code"}
    assert response.status_code == 400
    assert field in body["detail"]


def test_findings_unknown_version_404(viewer_client, scanned):
    for pk in ("999999", "abc", "9" * 30):
        response = viewer_client.get(f"/api/v1/image-versions/{pk}/findings/")
        assert response.status_code == 404, pk
        assert response.json()["code"] == "not_found"


def test_findings_of_an_unscanned_version_are_empty(viewer_client, platform_team):
    version = ImageVersionFactory()
    body = viewer_client.get(_url(version)).json()
    assert body["results"] == [] and body["scan_state"] == "unscanned"


def test_waived_filter_uses_the_waiver_selector(viewer_client, scanned, monkeypatch):
    """The waiver seam decides which findings are waived (its real implementation lands
    with the gate); the filter and the flag follow whatever it answers."""
    from images import scan_selectors
    from images.models import Waiver

    target = scanned["findings"]["ssl"]
    waiver = Waiver(pk=77)

    def fake(findings, **context):
        assert context["image_version_id"] == scanned["version"].pk
        return {f.pk: waiver for f in findings if f.pk == target.pk}

    monkeypatch.setattr(scan_selectors, "active_waivers_for", fake)
    waived = viewer_client.get(_url(scanned["version"], "?waived=true")).json()
    assert [(r["id"], r["waived"], r["waiver"]) for r in waived["results"]] == [
        (target.pk, True, 77)
    ]
    rest = viewer_client.get(_url(scanned["version"], "?waived=false")).json()
    assert target.pk not in {r["id"] for r in rest["results"]} and len(rest["results"]) == 3
    unfiltered = viewer_client.get(_url(scanned["version"])).json()
    assert {r["id"]: r["waived"] for r in unfiltered["results"]}[target.pk] is True


# --- advisories ----------------------------------------------------------------------------


def test_advisory_search_by_alias_and_text(viewer_client, scanned):
    by_alias = viewer_client.get("/api/v1/advisories/?q=cve-2024-0002").json()
    assert [r["id"] for r in by_alias["results"]] == ["DSA-5500-1"]
    assert by_alias["results"][0]["open_findings"] == 1
    by_cve = viewer_client.get("/api/v1/advisories/?q=CVE-2024-0001").json()
    ids = [r["id"] for r in by_cve["results"]]
    assert set(ids) == {"CVE-2024-0001", "DEBIAN-CVE-2024-0001"}
    assert ids[0] == "CVE-2024-0001"  # the id itself before the records aliasing it
    text = viewer_client.get("/api/v1/advisories/?q=glibc overflow").json()
    assert [r["id"] for r in text["results"]] == ["CVE-2024-0001"]
    none = viewer_client.get("/api/v1/advisories/?q=CVE-1999-0000").json()
    assert none["count"] == 0


def test_advisory_search_filters(viewer_client, scanned):
    scan_data.advisory(
        "ALSA-2024:1234", severity="critical", affected=(("AlmaLinux:9", "openssl"),)
    )
    scan_data.advisory("GHSA-abcd-efgh-ijkl", severity="low", withdrawn=True)

    def get(query: str) -> set[str]:
        response = viewer_client.get("/api/v1/advisories/" + query)
        return {r["id"] for r in response.json()["results"]}

    assert get("?severity=critical&ecosystem=almalinux:9") == {"ALSA-2024:1234"}
    assert get("?package=openssl") == {"ALSA-2024:1234"}
    assert get("?withdrawn=true") == {"GHSA-abcd-efgh-ijkl"}
    assert "GHSA-abcd-efgh-ijkl" not in get("?withdrawn=false")
    for bad in ("?severity=urgent", "?withdrawn=maybe", "?q=" + "c" * 300):
        response = viewer_client.get("/api/v1/advisories/" + bad)
        assert response.status_code == 400, bad
        assert set(response.json()) >= {"detail", "code"}


def test_advisory_detail_by_osv_id(viewer_client, scanned):
    scan_data.advisory(
        "ALSA-2024:1234", aliases=("CVE-2024-7777",), affected=(("AlmaLinux:9", "openssl"),)
    )
    body = viewer_client.get("/api/v1/advisories/ALSA-2024:1234/").json()
    assert body["id"] == "ALSA-2024:1234"
    assert body["aliases"] == [{"id": "CVE-2024-7777", "kind": "alias"}]
    assert body["affected"][0]["ecosystem"] == "AlmaLinux:9"
    assert body["affected"][0]["ranges"][0]["events"][1] == {"fixed": "2.0-1"}
    deb = viewer_client.get("/api/v1/advisories/debian-cve-2024-0001/").json()
    assert deb["id"] == "DEBIAN-CVE-2024-0001"
    assert deb["open_findings"] == 1 and deb["affected_sboms"] == 1
    assert deb["severity"] == "critical"
    for missing in ("CVE-1999-0000", "no.such", "-bad"):
        response = viewer_client.get(f"/api/v1/advisories/{missing}/")
        assert response.status_code == 404, missing
        assert response.json()["code"] == "not_found"


def test_advisory_list_query_count_is_flat(viewer_client, scanned, django_assert_max_num_queries):
    for n in range(30):
        scan_data.advisory(f"CVE-2025-{n:04d}", aliases=(f"GHSA-x{n}",))
    with django_assert_max_num_queries(8):
        body = viewer_client.get("/api/v1/advisories/?page_size=100").json()
    assert body["count"] == 35


# --- the permission matrix -------------------------------------------------------------------

CALLERS = ("anon", "viewer", "developer", "maintainer", "admin", "token_scoped", "token_other")
MATRIX = [
    #  method, path, scope for token_scoped, statuses per caller
    (
        "GET",
        "/api/v1/image-versions/{version}/findings/",
        "images:read",
        (401, 200, 200, 200, 200, 200, 403),
    ),
    # ImageVersionViewSet declares no scope for POST: refused before the method check.
    (
        "POST",
        "/api/v1/image-versions/{version}/findings/",
        "images:read",
        (401, 403, 403, 403, 403, 403, 403),
    ),
    ("GET", "/api/v1/advisories/", "images:read", (401, 200, 200, 200, 200, 200, 403)),
    (
        "GET",
        "/api/v1/advisories/?q=CVE-2024-0001",
        "images:read",
        (401, 200, 200, 200, 200, 200, 403),
    ),
    ("GET", "/api/v1/advisories/DSA-5500-1/", "images:read", (401, 200, 200, 200, 200, 200, 403)),
    (
        "DELETE",
        "/api/v1/advisories/DSA-5500-1/",
        "images:read",
        (401, 405, 405, 405, 405, 405, 403),
    ),
    (
        "GET",
        "/api/v1/advisories/CVE-1999-0000/",
        "images:read",
        (401, 404, 404, 404, 404, 404, 403),
    ),
]


@pytest.mark.parametrize(("method", "path", "scope", "expect"), MATRIX, ids=lambda v: str(v))
def test_permission_matrix(
    method, path, scope, expect, scanned, service_team, admin_user, make_token
):
    path = path.format(version=scanned["version"].pk)
    failures = []
    for caller, status in zip(CALLERS, expect, strict=True):
        client = APIClient()
        if caller in ("viewer", "developer", "maintainer"):
            user = get_user_model().objects.create_user(
                username=f"{caller}-{method}-{len(failures)}-{status}{path[-9:]}"
            )
            Membership.objects.create(team=service_team, user=user, role=caller)
            client.force_login(user)
        elif caller == "admin":
            client.force_login(admin_user)
        elif caller.startswith("token"):
            scopes = [scope] if caller == "token_scoped" else ["dockerfile:check"]
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(service_team, scopes)}")
        response = getattr(client, method.lower())(path)
        if response.status_code != status:
            failures.append(f"{caller}: {response.status_code} != {status}")
        if response.status_code >= 400:
            assert set(response.json()) >= {"detail", "code"}
    assert not failures, failures


def test_schema_documents_the_new_endpoints(client):
    schema = client.get("/api/schema/").content.decode()
    for path in (
        "/api/v1/image-versions/{id}/findings/",
        "/api/v1/advisories/:",
        "/api/v1/advisories/{osv_id}/",
        "/api/v1/advisories/{ref}/impact/",
    ):
        assert path in schema, path


def test_the_import_mixin_stays_first_and_keeps_its_scope():
    from images.api.advisories import AdvisoryViewSet
    from images.api.advisory_imports import AdvisoryImportActions

    assert AdvisoryViewSet.__bases__[0] is AdvisoryImportActions
    assert AdvisoryViewSet.required_scopes["import_records"] == "images:review"
    assert "POST" not in AdvisoryViewSet.required_scopes  # POST is the import's alone
