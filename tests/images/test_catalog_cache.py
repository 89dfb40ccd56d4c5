"""images.catalog_cache: the engine's Catalog from the database, in few queries, cached."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

from images.catalog_cache import (
    policy_catalog,
    policy_catalog_build,
    policy_catalog_clear,
)
from images.models import BaseImage, Registry
from images.references import registry_host
from tests.images.factories import BaseImageFactory, ImageVersionFactory, RegistryFactory


@pytest.fixture(autouse=True)
def _fresh_cache(settings: object) -> Iterator[None]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    policy_catalog_clear()
    yield
    policy_catalog_clear()


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("https://harbor.example.com/", "harbor.example.com"),
        ("HTTPS://Reg:443", "Reg:443"),
    ],
)
def test_registry_host(url: str, host: str) -> None:
    assert registry_host(url) == host


def test_demo_catalog_maps_every_field(demo_catalog: None) -> None:
    debian = BaseImage.objects.get(name="runtime/debian")
    ImageVersionFactory(base_image=debian, tag="12.1", digest=_digest(1), state="superseded")
    ImageVersionFactory(base_image=debian, tag="12", tags=["12", "12.2"], digest=_digest(2))
    catalog = policy_catalog_build()
    assert catalog.registries == ("127.0.0.1:5000",)
    assert {i.name for i in catalog.images} == set(BaseImage.objects.values_list("name", flat=True))
    image = catalog.by_name["runtime/debian"]
    assert (image.kind, image.os_family, image.os_version, image.status) == (
        "runtime",
        "debian",
        "12",
        "approved",
    )
    assert image.registry == "127.0.0.1:5000"
    # oldest first; a version with several tags resolves by each of them
    assert [(v.tag, v.state) for v in image.versions] == [
        ("12.1", "superseded"),
        ("12", "approved"),
        ("12.2", "approved"),
    ]
    assert image.current is not None and image.current.digest == _digest(2)
    assert image.version_by_tag("12.2").digest == _digest(2)
    centos = catalog.by_name["runtime/centos"]
    assert centos.replacement == "runtime/debian"
    assert centos.status == "deprecated"
    assert isinstance(centos.eol_date, datetime.date)
    assert catalog.by_name["scratch"].registry == ""
    assert catalog.by_name["scratch"].os_family == "none"


def test_build_costs_a_constant_number_of_queries(
    db: None, django_assert_num_queries: object
) -> None:
    registry = RegistryFactory()
    for n in range(3):
        ImageVersionFactory(base_image=BaseImageFactory(registry=registry), digest=_digest(n))
    with django_assert_num_queries(3):
        small = policy_catalog_build()
    for n in range(3, 60):
        image = BaseImageFactory(registry=registry, replacement=BaseImage.objects.first())
        ImageVersionFactory(base_image=image, digest=_digest(n))
        ImageVersionFactory(base_image=image, digest=_digest(1000 + n), tag="old")
    with django_assert_num_queries(3):
        large = policy_catalog_build()
    assert len(small.images) == 3 and len(large.images) == 60


def test_image_without_registry_takes_its_versions_registry(db: None) -> None:
    other = RegistryFactory(name="harbor", url="https://harbor.example.com")
    image = BaseImageFactory(registry=None)
    ImageVersionFactory(base_image=image, registry=other, digest=_digest(7))
    assert policy_catalog_build().by_name[image.name].registry == "harbor.example.com"


def test_cache_answers_without_queries_then_revalidates(
    db: None, settings: object, django_assert_num_queries: object
) -> None:
    settings.PORTAL_CATALOG_CACHE_SECONDS = 60
    image = BaseImageFactory()
    with django_assert_num_queries(3 + 2):  # fingerprint (3) + build (images, versions)
        first = policy_catalog()
    with django_assert_num_queries(0):
        assert policy_catalog() is first
    settings.PORTAL_CATALOG_CACHE_SECONDS = 0
    with django_assert_num_queries(3):  # unchanged fingerprint: no rebuild
        assert policy_catalog() is first
    ImageVersionFactory(base_image=image, digest=_digest(1))
    second = policy_catalog()
    assert second is not first
    assert second.by_name[image.name].versions[0].digest == _digest(1)


@pytest.mark.parametrize("change", ["status", "delete", "registry_url", "version_state"])
def test_every_kind_of_change_invalidates(db: None, settings: object, change: str) -> None:
    settings.PORTAL_CATALOG_CACHE_SECONDS = 0
    image = BaseImageFactory()
    version = ImageVersionFactory(base_image=image, digest=_digest(3), state="candidate")
    BaseImageFactory()
    before = policy_catalog()
    if change == "status":
        image.status = "blocked"
        image.save()
    elif change == "delete":
        BaseImage.objects.exclude(pk=image.pk).delete()
    elif change == "registry_url":
        Registry.objects.update(url="https://moved.example.com")
    else:
        version.state = "approved"
        version.save()
    after = policy_catalog()
    assert after is not before
    assert after != before
