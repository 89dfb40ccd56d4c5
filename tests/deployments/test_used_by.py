"""The "Used by" fragment of image pages: per environment and team, both modes, scoped."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.models import Team
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(platform_team, service_team):
    image = BaseImageFactory(name="runtime/debian", owner_team=platform_team)
    v1 = ImageVersionFactory(base_image=image, tag="12.5", state="superseded")
    v2 = ImageVersionFactory(base_image=image, tag="12.6")
    prod, staging = EnvironmentFactory(name="prod"), EnvironmentFactory(name="staging")
    pay = ServiceFactory(name="pay-api", team=service_team)
    other = ServiceFactory(name="search-api", team=Team.objects.create(name="search"))
    DeploymentFactory(service=pay, environment=prod, runtime_version=v2)
    DeploymentFactory(service=pay, environment=staging, runtime_version=v1, mode="image")
    DeploymentFactory(service=other, environment=prod, runtime_version=v2)
    return image, v1, v2


def test_base_image_used_by_counts_and_rows(world, admin_user, django_assert_max_num_queries):
    image, _, _ = world
    client = Client()
    client.force_login(admin_user)
    with django_assert_max_num_queries(12):
        page = client.get(f"/base-images/{image.pk}/used-by/").content.decode()
    assert "3 deployments" in page
    assert "prod</strong>: 2 volume mode, 0 image mode" in page
    assert "staging</strong>: 0 volume mode, 1 image mode" in page
    assert "search-api" in page and "pay-api" in page


def test_version_used_by_is_scoped_for_service_teams(world, developer):
    _, v1, v2 = world
    client = Client()
    client.force_login(developer)
    page = client.get(f"/image-versions/{v2.pk}/used-by/").content.decode()
    assert "2 deployments" in page and "pay-api" in page
    assert "search-api" not in page and "1 deployment of other teams" in page
    assert "<strong>search</strong>: 1" in page  # counted per team all the same
    assert client.get("/image-versions/999999/used-by/").status_code == 404
    assert client.get(f"/image-versions/{v1.pk}/used-by/").status_code == 200


def test_unused_image_says_so(platform_team, developer):
    image = BaseImageFactory(name="runtime/unused", owner_team=platform_team)
    client = Client()
    client.force_login(developer)
    page = client.get(f"/base-images/{image.pk}/used-by/").content.decode()
    assert "No deployment runs on runtime/unused" in page
