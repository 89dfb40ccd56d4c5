"""The build/runtime compatibility matrix (API + image pages) and a binary built in a build
image checked against its deployments' runtimes (service page, selectors), on the real ABI
facts of Debian 11/12/13 stored as ImageAbi rows."""

from __future__ import annotations

import pytest

from deployments.selectors.compat import (
    binary_facts,
    binary_runtime_checks,
    binary_verdict_for,
    image_facts,
)
from images.models import BaseImage
from images.selectors import compatibility_matrix
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.fixtures.compat import debian_abi_fixture, store_image_abi  # noqa: F401
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/base-images/compatibility/"


@pytest.fixture
def catalog(debian_abi, platform_team):
    gcc = BaseImageFactory(name="build/gcc", kind="build", owner_team=platform_team)
    debian = BaseImageFactory(name="runtime/debian", kind="runtime", owner_team=platform_team)
    ubi = BaseImageFactory(name="runtime/ubi", kind="runtime", owner_team=platform_team)
    return {
        "gcc12": store_image_abi(ImageVersionFactory(base_image=gcc, tag="12"), debian_abi["12"]),
        "gcc14": store_image_abi(ImageVersionFactory(base_image=gcc, tag="14"), debian_abi["13"]),
        "d11": store_image_abi(ImageVersionFactory(base_image=debian, tag="11"), debian_abi["11"]),
        "d12": store_image_abi(ImageVersionFactory(base_image=debian, tag="12"), debian_abi["12"]),
        "d13": store_image_abi(ImageVersionFactory(base_image=debian, tag="13"), debian_abi["13"]),
        # not in the matrix: never scanned, or not approved
        "unscanned": ImageVersionFactory(base_image=ubi, tag="9"),
        "candidate": store_image_abi(
            ImageVersionFactory(base_image=debian, tag="13-rc", state="candidate"),
            debian_abi["13"],
        ),
    }


def verdicts(body) -> dict[tuple[str, str], str]:
    return {
        (
            f"{r['build']['image']}:{r['build']['tag']}",
            f"{r['runtime']['image']}:{r['runtime']['tag']}",
        ): r["verdict"]
        for r in body["results"]
    }


def test_matrix_applies_the_manylinux_rule(catalog, token_client, service_team):
    client = token_client(service_team, ["images:read"])
    response = client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert verdicts(body) == {
        ("build/gcc:12", "runtime/debian:11"): "check_per_binary",
        ("build/gcc:12", "runtime/debian:12"): "compatible",
        ("build/gcc:12", "runtime/debian:13"): "compatible",
        ("build/gcc:14", "runtime/debian:11"): "check_per_binary",
        ("build/gcc:14", "runtime/debian:12"): "check_per_binary",
        ("build/gcc:14", "runtime/debian:13"): "compatible",
    }
    assert body["count"] == 6
    row = next(
        r for r in body["results"] if r["runtime"]["tag"] == "11" and r["build"]["tag"] == "12"
    )
    assert row["reasons"][0] == "glibc 2.36 (build) is newer than 2.31 (runtime)"
    assert (row["build_glibc"], row["runtime_glibc"]) == ("2.36", "2.31")
    assert row["build"]["libc_version"] == "2.36" and row["runtime"]["id"] == catalog["d11"].pk


def test_matrix_filters(catalog, token_client, service_team):
    client = token_client(service_team, ["images:read"])
    only = client.get(
        URL, {"build": "build/gcc", "runtime": "runtime/debian", "compatible": "true"}
    )
    assert set(verdicts(only.json()).values()) == {"compatible"} and only.json()["count"] == 3
    none = client.get(URL, {"runtime": "runtime/ubi"})
    assert none.status_code == 200 and none.json()["count"] == 0


def test_matrix_queries_do_not_grow_with_versions(
    catalog, token_client, service_team, django_assert_max_num_queries, debian_abi
):
    client = token_client(service_team, ["images:read"])
    with django_assert_max_num_queries(8):
        client.get(URL)
    debian = BaseImage.objects.get(name="runtime/debian")
    for n in range(5):
        store_image_abi(ImageVersionFactory(base_image=debian, tag=f"12.{n}"), debian_abi["12"])
    with django_assert_max_num_queries(8):
        assert client.get(URL).json()["count"] == 16


@pytest.mark.parametrize(
    "params,field",
    [
        ({"build": "Build/GCC"}, "build"),
        ({"build": "../etc"}, "build"),
        ({"build": "x" * 300}, "build"),
        ({"build": "runtime/debian"}, "build"),  # a runtime image named as the build side
        ({"runtime": "build/gcc"}, "runtime"),
        ({"runtime": "runtime/nope"}, "runtime"),
        ({"compatible": "maybe"}, "compatible"),
    ],
)
def test_matrix_bad_filters_are_400(catalog, token_client, service_team, params, field):
    response = token_client(service_team, ["images:read"]).get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] and field in str(body)


CALLERS = ("anon", "viewer", "admin", "token_scoped", "token_other")


@pytest.mark.parametrize(
    "method,expect",
    [
        (
            "get",
            {"anon": 401, "viewer": 200, "admin": 200, "token_scoped": 200, "token_other": 403},
        ),
        (
            "post",
            {"anon": 401, "viewer": 405, "admin": 405, "token_scoped": 405, "token_other": 403},
        ),
        (
            "delete",
            {"anon": 401, "viewer": 405, "admin": 405, "token_scoped": 405, "token_other": 403},
        ),
    ],
)
def test_compatibility_permission_matrix(
    catalog, method, expect, make_user, service_team, admin_user, make_token
):
    from rest_framework.test import APIClient

    got = {}
    for caller in CALLERS:
        client = APIClient()
        if caller == "viewer":
            client.force_login(make_user(f"viewer-{method}", service_team, "viewer"))
        elif caller == "admin":
            client.force_login(admin_user)
        elif caller.startswith("token"):
            scopes = ["images:read"] if caller == "token_scoped" else ["binaries:read"]
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(service_team, scopes)}")
        response = getattr(client, method)(URL)
        got[caller] = response.status_code
        if response.status_code >= 400:
            assert {"detail", "code"} <= set(response.json())
    assert got == expect


def test_both_image_pages_show_the_pairs(catalog, client, make_user, service_team):
    client.force_login(make_user("reader", service_team, "viewer"))
    gcc = BaseImage.objects.get(name="build/gcc")
    page = client.get(f"/base-images/{gcc.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Compatible runtimes" in html and "runtime/debian:13" in html
    assert "glibc 2.36 (build) is newer than 2.31 (runtime)" in html
    debian = BaseImage.objects.get(name="runtime/debian")
    html = client.get(f"/base-images/{debian.pk}/").content.decode()
    assert "Compatible build images" in html and "build/gcc:14" in html


# --- selectors: facts, the unknown verdict, built_in checks ----------------------------------


def test_image_facts_none_before_a_scan_and_unknown_verdict(catalog):
    assert image_facts(catalog["unscanned"]) is None
    binary = BinaryVersionFactory(version_needs=[["libc.so.6", "GLIBC_2.34"]], facts_version=2)
    result = binary_verdict_for(binary, catalog["unscanned"])
    assert result.verdict == "unknown"
    (finding,) = result.findings
    assert finding.key == "image-not-scanned" and finding.remediation == "scan the image first"


def test_binary_verdict_for_names_the_build_image_to_use(catalog):
    binary = BinaryVersionFactory(
        machine="x86_64",
        needed=["libc.so.6"],
        version_needs=[["libc.so.6", "GLIBC_2.2.5"], ["libc.so.6", "GLIBC_2.38"]],
        facts_version=2,
    )
    facts = binary_facts(binary)
    assert facts.version_needs == (("libc.so.6", "GLIBC_2.2.5"), ("libc.so.6", "GLIBC_2.38"))
    on12 = binary_verdict_for(binary, catalog["d12"])
    assert on12.verdict == "incompatible"
    assert on12.findings[0].title == "libc.so.6 on runtime/debian:12 does not define GLIBC_2.38"
    assert on12.findings[0].remediation == "rebuild in build/gcc:12 (glibc ≤ 2.36)"
    on11 = binary_verdict_for(binary, catalog["d11"])
    # no approved build image has a glibc ≤ 2.31: the generic remediation
    assert on11.findings[0].remediation.startswith("rebuild against glibc ≤ 2.31")
    assert binary_verdict_for(binary, catalog["d13"]).verdict == "compatible"


def test_a_binary_built_in_gcc14_is_checked_on_its_deployments_runtimes(
    catalog, client, make_user, service_team
):
    service = ServiceFactory(name="orders", team=service_team)
    binary = BinaryVersionFactory(
        service=service,
        version="3.0.0",
        machine="x86_64",
        needed=["libc.so.6"],
        version_needs=[["libc.so.6", "GLIBC_2.38"]],
        facts_version=2,
        built_in=catalog["gcc14"],
    )
    DeploymentFactory(
        service=service,
        environment=EnvironmentFactory(name="dev", namespace="orders-dev"),
        runtime_version=catalog["d13"],
        binary_version=binary,
    )
    DeploymentFactory(
        service=service,
        environment=EnvironmentFactory(name="prod", namespace="orders-prod"),
        runtime_version=catalog["d12"],
        binary_version=binary,
    )
    DeploymentFactory(
        service=service,
        environment=EnvironmentFactory(name="qa", namespace="orders-qa"),
        runtime_version=catalog["unscanned"],
        binary_version=binary,
    )
    checks = binary_runtime_checks(binary)
    assert [(c.deployment.environment.name, c.result.verdict) for c in checks] == [
        ("dev", "compatible"),
        ("prod", "incompatible"),
        ("qa", "unknown"),
    ]
    client.force_login(make_user("reader", service_team, "viewer"))
    html = client.get("/services/orders/").content.decode()
    assert "3.0.0 (x86_64) on its runtimes" in html
    assert "Built in build/gcc:14" in html
    assert "does not define GLIBC_2.38" in html and "rebuild in build/gcc:12" in html
    assert "scan the image first" in html


def test_compatibility_matrix_selector_excludes_unscanned_and_candidates(catalog):
    pairs = compatibility_matrix(runtime="runtime/debian")
    runtime_ids = {p.runtime.pk for p in pairs}
    assert catalog["candidate"].pk not in runtime_ids
    assert runtime_ids == {catalog["d11"].pk, catalog["d12"].pk, catalog["d13"].pk}
