"""The blast radius: CVE → image and binary versions → deployments (both modes, per
environment) → services → teams, scoped to the caller's teams; bad input; the matrix."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from deployments.selectors.impact import advisory_impact
from portal.actors import Actor
from portal.choices import Role
from portal.models import Membership, Team
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images import scan_data
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(platform_team, service_team):
    """payments (the service team) and orders; one CVE reaching an image and a Go binary."""
    orders = Team.objects.create(name="orders")
    prod = EnvironmentFactory(name="prod", namespace="apps-prod")
    staging = EnvironmentFactory(name="staging", namespace="apps-staging")

    image_sbom = scan_data.sbom()
    binary_sbom = scan_data.sbom(subject="binary", ecosystem="Go")
    vulnerable = ImageVersionFactory(sbom=image_sbom, scan_state="scanned", tag="12.1")
    clean = ImageVersionFactory(base_image=vulnerable.base_image, sbom=scan_data.sbom(), tag="12.2")
    cve = scan_data.advisory("CVE-2024-0001", severity="critical")
    deb = scan_data.advisory("DEBIAN-CVE-2024-0001", upstream=("CVE-2024-0001",))
    go = scan_data.advisory("GO-2024-0001", aliases=("CVE-2024-0001", "GHSA-aaaa-bbbb-cccc"))
    unrelated = scan_data.advisory("DSA-9999-1", related=("CVE-2024-0001",))
    libc = scan_data.package("libc6", "2.36-9", source="glibc")
    stdlib = scan_data.package("stdlib", "1.21.0", ecosystem="Go")
    scan_data.finding(image_sbom, libc, deb)
    scan_data.finding(binary_sbom, stdlib, go)
    scan_data.finding(clean.sbom, libc, unrelated)  # "related" is another vulnerability
    scan_data.finding(clean.sbom, libc, cve, resolved=True)  # resolved: not a blast any more

    pay = ServiceFactory(name="pay-api", team=service_team)
    ord_web = ServiceFactory(name="ord-web", team=orders)
    ord_clean = ServiceFactory(name="ord-clean", team=orders)
    go_binary = BinaryVersionFactory(service=pay, sbom=binary_sbom, scan_state="scanned")
    deployments = {
        "pay_prod": DeploymentFactory(
            service=pay, environment=prod, runtime_version=vulnerable, mode="volume"
        ),
        "pay_staging": DeploymentFactory(
            service=pay,
            environment=staging,
            runtime_version=clean,
            binary_version=go_binary,
            mode="image",
        ),
        "ord_prod": DeploymentFactory(
            service=ord_web, environment=prod, runtime_version=vulnerable, mode="image"
        ),
        "ord_clean": DeploymentFactory(
            service=ord_clean, environment=prod, runtime_version=clean, mode="volume"
        ),
    }
    return {
        "orders": orders,
        "vulnerable": vulnerable,
        "go_binary": go_binary,
        "deployments": deployments,
    }


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_admin_sees_the_whole_blast_radius(world, admin_user):
    body = _client(admin_user).get("/api/v1/advisories/CVE-2024-0001/impact/").json()
    counts = body["counts"]
    assert body["advisory"]["id"] == "CVE-2024-0001"
    assert {a["id"] for a in body["advisories"]} == {
        "CVE-2024-0001",
        "DEBIAN-CVE-2024-0001",
        "GO-2024-0001",
    }
    assert counts["image_versions"] == 1 and counts["binary_versions"] == 1
    assert counts["deployments"] == 3
    assert counts["deployments_by_mode"] == {"volume": 1, "image": 2}
    assert counts["deployments_by_environment"] == {"prod": 2, "staging": 1}
    assert counts["services"] == 2 and counts["teams"] == 2 and counts["packages"] == 2
    assert body["scoped_to_teams"] is False
    assert [v["tag"] for v in body["image_versions"]] == ["12.1"]
    assert body["binary_versions"][0]["service"] == "pay-api"
    via = {
        (d["service"], d["environment"]): (d["via_image"], d["via_binary"])
        for d in body["deployments"]
    }
    assert via == {
        ("pay-api", "prod"): (True, False),
        ("pay-api", "staging"): (False, True),
        ("ord-web", "prod"): (True, False),
    }
    envs = {e["name"]: e for e in body["environments"]}
    assert envs["prod"] == {"name": "prod", "total": 2, "volume": 1, "image": 1}
    teams = {t["name"]: t for t in body["teams"]}
    assert teams["payments"] == {"name": "payments", "services": 1, "deployments": 2}
    assert teams["orders"] == {"name": "orders", "services": 1, "deployments": 1}


@pytest.mark.parametrize(
    "ref", ["DEBIAN-CVE-2024-0001", "GO-2024-0001", "ghsa-aaaa-bbbb-cccc", "cve-2024-0001"]
)
def test_any_alias_gives_the_same_radius(world, admin_user, ref):
    body = _client(admin_user).get(f"/api/v1/advisories/{ref}/impact/").json()
    assert body["counts"]["deployments"] == 3, ref
    assert body["counts"]["advisories"] == 3


def test_a_related_record_is_another_vulnerability(world, admin_user):
    body = _client(admin_user).get("/api/v1/advisories/DSA-9999-1/impact/").json()
    assert body["counts"]["advisories"] == 1
    # The clean version carries DSA-9999-1: ord-clean and pay-api (staging) run it.
    assert body["counts"]["deployments"] == 2


def test_a_service_team_sees_only_its_services(world, make_user, service_team):
    dev = make_user("pat", service_team, Role.DEVELOPER)
    body = _client(dev).get("/api/v1/advisories/CVE-2024-0001/impact/").json()
    assert body["scoped_to_teams"] is True
    assert body["counts"]["deployments"] == 2
    assert body["counts"]["services"] == 1 and body["counts"]["teams"] == 1
    assert body["counts"]["deployments_by_environment"] == {"prod": 1, "staging": 1}
    assert body["counts"]["image_versions"] == 1  # the catalog is everyone's
    assert "ord-web" not in json.dumps(body) and "orders" not in json.dumps(body)


def test_another_team_does_not_see_payments_binaries(world, make_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(world['orders'], ['images:read'])}")
    body = client.get("/api/v1/advisories/GO-2024-0001/impact/").json()
    assert body["counts"]["binary_versions"] == 0
    assert body["counts"]["deployments"] == 1
    assert [d["service"] for d in body["deployments"]] == ["ord-web"]
    assert "pay-api" not in json.dumps(body)


def test_a_member_of_no_team_sees_no_deployments(world):
    loner = get_user_model().objects.create_user(username="loner")
    body = _client(loner).get("/api/v1/advisories/CVE-2024-0001/impact/")
    # No team, no role: images:read needs the viewer role somewhere.
    assert body.status_code == 403


def test_the_platform_team_sees_everything(world, make_user, platform_team):
    viewer = make_user("pv", platform_team, Role.VIEWER)
    impact = advisory_impact(advisory_ref="CVE-2024-0001", actor=Actor(user=viewer))
    assert impact.counts["deployments"] == 3 and impact.scoped is False


@pytest.mark.parametrize("ref", ["CVE-1999-0000", "nothing", "x" * 101, "%20", "a%2Fb"])
def test_unknown_advisory_is_404(world, admin_user, ref):
    response = _client(admin_user).get(f"/api/v1/advisories/{ref}/impact/")
    assert response.status_code == 404, ref
    assert set(response.json()) >= {"detail", "code"}


def test_query_count_does_not_grow_with_deployments(
    world, admin_user, django_assert_max_num_queries
):
    client = _client(admin_user)
    with django_assert_max_num_queries(20) as small:
        client.get("/api/v1/advisories/CVE-2024-0001/impact/")
    for n in range(40):
        env = EnvironmentFactory(name=f"e{n}", namespace=f"ns{n}")
        DeploymentFactory(environment=env, runtime_version=world["vulnerable"], mode="volume")
    with django_assert_max_num_queries(len(small.captured_queries)):
        body = client.get("/api/v1/advisories/CVE-2024-0001/impact/").json()
    assert body["counts"]["deployments"] == 43


def test_withdrawn_family_member_with_no_open_findings_reaches_nothing(world, admin_user):
    scan_data.advisory("CVE-2030-0001", withdrawn=True)
    body = _client(admin_user).get("/api/v1/advisories/CVE-2030-0001/impact/").json()
    assert body["counts"]["deployments"] == 0 and body["deployments"] == []


CALLERS = ("anon", "viewer", "developer", "maintainer", "admin", "token_scoped", "token_other")
MATRIX = [
    (
        "GET",
        "/api/v1/advisories/CVE-2024-0001/impact/",
        "images:read",
        (401, 200, 200, 200, 200, 200, 403),
    ),
    (
        "GET",
        "/api/v1/advisories/CVE-2024-0001/impact/",
        "deployments:read",
        (401, 200, 200, 200, 200, 403, 403),
    ),
    (
        "POST",
        "/api/v1/advisories/CVE-2024-0001/impact/",
        "images:read",
        (401, 405, 405, 405, 405, 405, 403),
    ),
    (
        "GET",
        "/api/v1/advisories/CVE-1999-0000/impact/",
        "images:read",
        (401, 404, 404, 404, 404, 404, 403),
    ),
]


@pytest.mark.parametrize(("method", "path", "scope", "expect"), MATRIX, ids=lambda v: str(v))
def test_permission_matrix(
    method, path, scope, expect, world, service_team, admin_user, make_token
):
    failures = []
    for caller, status in zip(CALLERS, expect, strict=True):
        client = APIClient()
        if caller in ("viewer", "developer", "maintainer"):
            user = get_user_model().objects.create_user(username=f"m-{caller}")
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
        get_user_model().objects.filter(username__startswith="m-").delete()
    assert not failures, failures
