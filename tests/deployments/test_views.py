"""UI pages: services list, service page, upload form, deployment page, diff, rollback."""

from __future__ import annotations

import hashlib

import pytest

from deployments.models import BinaryVersion, Release
from tests.deployments.conftest import stored_files
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def dev_client(client, developer):
    client.force_login(developer)
    return client


def test_service_list_empty_state_and_rows(dev_client, service_team):
    page = dev_client.get("/services/").content.decode()
    assert "No services yet" in page
    ServiceFactory(name="orders", team=service_team)
    page = dev_client.get("/services/").content.decode()
    assert 'href="/services/orders/"' in page
    assert "No service matches" in dev_client.get("/services/?q=zzz").content.decode()


def test_service_page_versions_table_and_filters_survive_pagination(
    dev_client, service_team, django_assert_max_num_queries
):
    service = ServiceFactory(name="orders", team=service_team)
    for n in range(30):
        BinaryVersionFactory(
            service=service, version=f"1.{n}.0", arch="aarch64" if n % 2 else "x86_64"
        )
    deployment = DeploymentFactory(
        service=service, binary_version=BinaryVersion.objects.get(version="1.3.0")
    )
    with django_assert_max_num_queries(12):
        response = dev_client.get("/services/orders/", {"arch": "aarch64", "page_size": 10})
    page = response.content.decode()
    assert page.count("<td>aarch64</td>") == 10
    assert "arch=aarch64" in page and "page=2" in page  # the next link keeps the filter
    assert f'/deployments/{deployment.pk}/">{deployment.environment.name}</a>' in page
    assert "2.34" in page and "12.1\xa0KB" in page
    second = dev_client.get("/services/orders/", {"arch": "aarch64", "page_size": 10, "page": 2})
    assert second.content.decode().count("<td>aarch64</td>") == 5
    assert dev_client.get("/services/Bad..Name/").status_code == 404


def test_upload_form_uses_the_same_service(dev_client, service_team, binary_store_dir, elf_files):
    ServiceFactory(name="orders", team=service_team)
    assert dev_client.get("/services/orders/upload/").status_code == 200
    path = elf_files["hello-static"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with path.open("rb") as fh:
        response = dev_client.post(
            "/services/orders/upload/",
            {"file": fh, "version": "3.1.0", "arch": "amd64", "sha256": digest},
        )
    assert response.status_code == 302
    row = BinaryVersion.objects.get()
    assert (row.version, row.linkage, row.sha256) == ("3.1.0", "static", digest)
    with path.open("rb") as fh:
        bad = dev_client.post(
            "/services/orders/upload/",
            {"file": fh, "version": "3.2.0", "arch": "x86_64", "sha256": "1" * 64},
        )
    assert bad.status_code == 400
    assert "Checksum mismatch" in bad.content.decode()
    assert BinaryVersion.objects.count() == 1
    assert len(stored_files(binary_store_dir["root"])) == 1
    assert list(binary_store_dir["temp"].iterdir()) == []


def test_upload_form_checks_csrf(client, developer, service_team, binary_store_dir, elf_files):
    from django.test import Client

    ServiceFactory(name="orders", team=service_team)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(developer)
    with elf_files["hello"].open("rb") as fh:
        response = strict.post(
            "/services/orders/upload/",
            {"file": fh, "version": "1", "arch": "x86_64", "sha256": "0" * 64},
        )
    assert response.status_code == 403
    assert BinaryVersion.objects.count() == 0
    assert list(binary_store_dir["temp"].iterdir()) == []


def test_deployment_page_release_diff_and_rollback(dev_client, service_team, settings):
    settings.PORTAL_URL = "https://portal.example.com"
    service = ServiceFactory(name="orders", team=service_team)
    deployment = DeploymentFactory(service=service)
    newer = BinaryVersionFactory(service=service, version="2.0.0")
    url = f"/deployments/{deployment.pk}/"
    assert "No release yet" in dev_client.get(url).content.decode()
    assert dev_client.post(url, {}).status_code == 302
    assert dev_client.post(url, {"binary_version": newer.pk}).status_code == 302
    page = dev_client.get(url).content.decode()
    assert "#2" in page and "Roll back to #1" in page
    diff = dev_client.get(f"/deployments/{deployment.pk}/diff/", {"a": 1, "b": 2}).content.decode()
    assert "--- release-1.yaml" in diff and "+++ release-2.yaml" in diff
    assert "<ins>+" in diff and "2.0.0" in diff
    missing = dev_client.get(f"/deployments/{deployment.pk}/diff/", {"a": 1, "b": 9})
    assert "has no release #9" in missing.content.decode()
    first = Release.objects.get(number=1)
    response = dev_client.post(f"/releases/{first.pk}/rollback/")
    assert response.status_code == 302
    third = Release.objects.get(number=3)
    assert third.rollback_of_id == first.pk and third.binary_sha256 == first.binary_sha256
    detail = dev_client.get(f"/releases/{third.pk}/").content.decode()
    assert "rollback to #1" in detail and "kind: Deployment" in detail


def test_release_refusal_is_shown(dev_client, service_team):
    service = ServiceFactory(name="orders", team=service_team)
    deployment = DeploymentFactory(
        service=service,
        environment=EnvironmentFactory(
            name="old", namespace="old", delivery_strategy="imageVolume", k8s_version="1.30"
        ),
    )
    response = dev_client.post(f"/deployments/{deployment.pk}/", {})
    assert response.status_code == 400
    assert "image volumes need Kubernetes 1.35" in response.content.decode()
    assert Release.objects.count() == 0


def test_environment_list(dev_client):
    assert "No environments yet" in dev_client.get("/environments/").content.decode()
    EnvironmentFactory(name="prod")
    page = dev_client.get("/environments/").content.decode()
    assert "/api/v1/environments/prod/hostpath-sync.yaml" in page
