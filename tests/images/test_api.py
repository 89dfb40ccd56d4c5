"""The catalog API: list, filters, pagination, detail, resolve, bad input, query counts."""

import pytest

from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/base-images/"


@pytest.fixture
def reader(token_client, service_team):
    return token_client(service_team, ["images:read"])


def test_list_filters_and_search(reader, demo_catalog):
    names = lambda r: [i["name"] for i in r.json()["results"]]  # noqa: E731
    assert len(names(reader.get(LIST))) == 9  # with runtime/debian-11 (the migration demo)
    assert names(reader.get(LIST, {"kind": "build"})) == [
        "build/gcc",
        "build/golang",
        "build/golang-debian",
    ]
    assert names(reader.get(LIST, {"os_family": "centos"})) == ["build/golang", "runtime/centos"]
    assert names(reader.get(LIST, {"status": "restricted"})) == ["runtime/alpine"]
    assert names(reader.get(LIST, {"q": "GOLANG", "status": "approved"})) == ["build/golang-debian"]


def test_list_item_shape(reader, demo_catalog):
    item = next(i for i in reader.get(LIST).json()["results"] if i["name"] == "runtime/centos")
    assert item["status"] == "deprecated"
    assert item["eol_date"] == "2024-06-30"
    assert item["replacement"] == "runtime/debian"
    assert "end of life" in item["status_note"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "banana"}, "kind"),
        ({"status": "shiny"}, "status"),
        ({"os_family": "bsd"}, "os_family"),
    ],
)
def test_unknown_filter_values_are_400(reader, demo_catalog, params, field):
    response = reader.get(LIST, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["errors"]
    assert "not one of the available choices" in body["detail"]


def test_pagination_and_bad_page(reader, demo_catalog):
    page = reader.get(LIST, {"page_size": 3}).json()
    assert page["count"] == 9 and len(page["results"]) == 3 and page["next"]
    response = reader.get(LIST, {"page": 99})
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "Invalid page 99: That page contains no results. Pages are numbered from 1; "
        "follow `next` from the first page until it is null."
    )


@pytest.mark.parametrize("size", [5, 50])
def test_list_query_count_is_independent_of_page_size(
    reader, demo_catalog, django_assert_max_num_queries, size
):
    for _ in range(60):
        ImageVersionFactory(base_image=BaseImageFactory())
    reader.get(LIST)  # the token's last-used touch happens once a minute, not per request
    # token, count, the page's ids, then its annotated rows (subqueries run for the page only)
    with django_assert_max_num_queries(4):
        response = reader.get(LIST, {"page_size": size})
    assert len(response.json()["results"]) == size


def test_detail_has_versions(reader, demo_catalog):
    version = ImageVersionFactory(base_image=BaseImageFactory(name="runtime/rocky"))
    body = reader.get(f"{LIST}{version.base_image.pk}/").json()
    assert body["versions"][0]["digest"] == version.digest
    assert body["versions"][0]["pull_ref"] == f"127.0.0.1:5000/runtime/rocky@{version.digest}"
    assert reader.get(f"{LIST}999999/").status_code == 404


@pytest.fixture
def debian(demo_catalog):
    from images.models import BaseImage

    image = BaseImage.objects.get(name="runtime/debian")
    old = ImageVersionFactory(base_image=image, tag="12", state="superseded")
    new = ImageVersionFactory(base_image=image, tag="12", tags=["12", "12.8"])
    return image, old, new


@pytest.mark.parametrize(
    "ref",
    ["runtime/debian", "runtime/debian:12", "debian:12.8", "127.0.0.1:5000/runtime/debian:12"],
)
def test_resolve_accepts_every_reference_form(reader, debian, ref):
    _, _, new = debian
    body = reader.get(f"{LIST}resolve/", {"ref": ref}).json()
    assert body["approved"] is True, body
    assert body["digest"] == new.digest
    assert body["pinned_ref"] == new.pull_ref
    assert body["reasons"] == []


def test_resolve_by_digest_of_a_superseded_version(reader, debian):
    _, old, _ = debian
    body = reader.get(f"{LIST}resolve/", {"ref": f"runtime/debian@{old.digest}"}).json()
    assert body["approved"] is False
    assert body["version_state"] == "superseded"
    assert "Version 12 is superseded." in body["reasons"]


def test_resolve_deprecated_names_replacement(reader, debian):
    _, _, new = debian
    body = reader.get(f"{LIST}resolve/", {"ref": "centos:7"}).json()
    assert body["image"] == "runtime/centos"
    assert body["approved"] is False
    assert body["replacement"] == {"name": "runtime/debian", "pinned_ref": new.pull_ref}
    assert any("end of life" in r for r in body["reasons"])


def test_resolve_unknown_and_foreign_registry(reader, debian):
    body = reader.get(f"{LIST}resolve/", {"ref": "nginx:1.25"}).json()
    assert body["approved"] is False and body["image"] is None
    body = reader.get(f"{LIST}resolve/", {"ref": "docker.io/runtime/debian:12"}).json()
    assert body["approved"] is False
    assert "docker.io is not a registry the portal knows." in body["reasons"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "Give ?ref="),
        ("UPPER/case", "repository name 'UPPER/case' is invalid"),
        ("debian@sha256:abc", "not of the form sha256:"),
        ("debian:-bad", "The tag '-bad' is invalid"),
        ("a b", "contains whitespace"),
        ("x" * 600, "longer than 512"),
    ],
)
def test_resolve_malformed_ref_is_400(reader, debian, ref, message):
    response = reader.get(f"{LIST}resolve/", {"ref": ref})
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/base-images/resolve/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
