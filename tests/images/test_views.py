"""Catalog pages: filters that survive paging, empty states, snippets, query counts."""

import re

import pytest
from django.urls import reverse

from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db

LIST = reverse("images:base-image-list")


@pytest.fixture
def logged_in(client, developer):
    client.force_login(developer)
    return client


def test_login_required(client):
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_filters_survive_pagination(logged_in, demo_catalog):
    for n in range(30):
        BaseImageFactory(name=f"build/tool{n:02d}", kind="build", toolchain="go 1.22")
    html = logged_in.get(LIST, {"kind": "build", "q": "tool", "page_size": 10}).content.decode()
    assert "Page 1 of 3" in html
    next_link = re.search(r'href="\?([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    assert "kind=build" in next_link and "q=tool" in next_link and "page_size=10" in next_link
    page2 = logged_in.get(f"{LIST}?{next_link}").content.decode()
    assert "Page 2 of 3" in page2
    assert "build/tool10" in page2 and "runtime/debian" not in page2


def test_empty_states(logged_in, db):
    html = logged_in.get(LIST).content.decode()
    assert "The catalog is empty" in html
    html = logged_in.get(LIST, {"q": "nothing-like-this"}).content.decode()
    assert "No base image matches these filters" in html


def test_bad_filter_value_is_explained_not_a_500(logged_in, demo_catalog):
    response = logged_in.get(LIST, {"kind": "banana"})
    assert response.status_code == 200
    assert "Some filters were not understood" in response.content.decode()


@pytest.mark.parametrize("page_size", [10, 100])
def test_list_page_query_count_is_independent_of_page_size(
    logged_in, demo_catalog, django_assert_max_num_queries, page_size
):
    for _ in range(120):
        ImageVersionFactory(base_image=BaseImageFactory())
    with django_assert_max_num_queries(8):
        response = logged_in.get(LIST, {"page_size": page_size})
    assert response.content.decode().count("<tr>") == page_size + 1


def test_detail_shows_status_replacement_and_pinned_snippets(logged_in, demo_catalog):
    from images.models import BaseImage

    centos = BaseImage.objects.get(name="runtime/centos")
    version = ImageVersionFactory(base_image=centos, tag="7", state="candidate")
    html = logged_in.get(reverse("images:base-image-detail", args=[centos.pk])).content.decode()
    assert "reached end of life on 2024-06-30" in html
    assert "EOL 2024-06-30" in html
    assert "runtime/debian</a>" in html
    assert f"FROM 127.0.0.1:5000/runtime/centos@{version.digest}" in html
    assert "hostPath" in html and "/test-data/bin/application" in html
    assert "candidate" in html


def test_detail_without_versions_explains(logged_in, demo_catalog):
    from images.models import BaseImage

    debian = BaseImage.objects.get(name="runtime/debian")
    html = logged_in.get(reverse("images:base-image-detail", args=[debian.pk])).content.decode()
    assert "No version of runtime/debian has been built or found yet" in html
    scratch = BaseImage.objects.get(name="scratch")
    html = logged_in.get(reverse("images:base-image-detail", args=[scratch.pk])).content.decode()
    assert "FROM scratch" in html and "static C/C++" in html


def test_a_past_end_of_life_is_red_whatever_the_status(logged_in, demo_catalog):
    """An image past its end of life reads so even when not (yet) deprecated: the EOL cell
    of the catalog is `eol-past` and the detail's badge the deprecated one, not the green."""
    import datetime as dt

    from images.models import BaseImage

    past = BaseImage.objects.get(name="runtime/alpine")
    BaseImage.objects.filter(pk=past.pk).update(eol_date=dt.date(2020, 1, 1), status="restricted")
    future = BaseImage.objects.get(name="runtime/debian")
    BaseImage.objects.filter(pk=future.pk).update(eol_date=dt.date(2999, 1, 1), status="approved")
    listing = logged_in.get(LIST, {"q": "runtime/"}).content.decode()
    rows = {row.split("</a>")[0].rsplit(">", 1)[-1]: row for row in listing.split("<tr>")[1:]}
    assert 'class="eol-past"' in rows["runtime/alpine"]
    assert 'class="eol-past"' not in rows["runtime/debian"]
    detail = logged_in.get(reverse("images:base-image-detail", args=[past.pk])).content.decode()
    assert 'class="badge badge-deprecated">EOL' in detail
    detail = logged_in.get(reverse("images:base-image-detail", args=[future.pk])).content.decode()
    assert 'class="badge badge-approved">EOL' in detail
