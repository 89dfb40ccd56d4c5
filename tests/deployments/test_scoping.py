"""Team scoping of reads (M4): service teams read their own services, binaries, deployments,
releases and manifests; the platform team reads every team's; another team's object is 404."""

from __future__ import annotations

import hashlib

import pytest
import yaml
from django.core.files.base import ContentFile

from deployments.services import environment_fetch_token_create, release_create
from deployments.storage import binary_store
from portal.actors import Actor
from portal.choices import Role
from portal.models import Team
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db

READ_ALL = ["services:read", "binaries:read", "deployments:read"]


def _stored_binary(service, version: str, payload: bytes):
    sha = hashlib.sha256(payload).hexdigest()
    name, _ = binary_store(sha256=sha, content=ContentFile(payload))
    return BinaryVersionFactory(
        service=service, version=version, sha256=sha, file=name, size=len(payload)
    )


@pytest.fixture
def world(service_team, platform_team, make_user, binary_store_dir):
    """Two service teams in one shared hostPath environment, each with a released service."""
    orders_team = Team.objects.create(name="orders")
    environment = EnvironmentFactory(name="prod", namespace="prod", delivery_strategy="hostPath")
    runtime = ImageVersionFactory(base_image__name="runtime/debian")
    out = {"environment": environment, "orders_team": orders_team}
    for key, team in (("pay", service_team), ("orders", orders_team)):
        service = ServiceFactory(name=f"{key}-api", team=team)
        binary = _stored_binary(service, "1.0.0", f"the {key} binary".encode())
        deployment = DeploymentFactory(
            service=service, environment=environment, runtime_version=runtime, binary_version=binary
        )
        developer = make_user(f"{key}-dev", team, Role.DEVELOPER)
        release = release_create(actor=Actor(user=developer), deployment=deployment)
        out[key] = {
            "service": service,
            "binary": binary,
            "deployment": deployment,
            "release": release,
            "user": developer,
        }
    return out


def _names(response, field: str = "name") -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(row[field] for row in response.json()["results"])


def test_m4_payments_binaries_read_token_gets_404_downloading_the_orders_binary(
    world, token_client, service_team
):
    reader = token_client(service_team, ["binaries:read"])
    orders = world["orders"]["binary"]
    for url in (f"/api/v1/binaries/{orders.pk}/download/", f"/api/v1/binaries/{orders.pk}/"):
        refused = reader.get(url)
        assert refused.status_code == 404, url
        assert refused.json()["code"] == "not_found"
        assert b"the orders binary" not in refused.content
    own = reader.get(f"/api/v1/binaries/{world['pay']['binary'].pk}/download/")
    assert own.status_code == 200
    assert b"".join(own.streaming_content) == b"the pay binary"
    # a service's binary list by name: the other team's service does not exist for it either
    assert reader.get("/api/v1/services/orders-api/binaries/").status_code == 404
    assert _names(reader.get("/api/v1/services/pay-api/binaries/"), "service") == ["pay-api"]


def test_m4_lists_show_only_the_own_teams_rows(world, token_client, service_team):
    reader = token_client(service_team, READ_ALL)
    assert _names(reader.get("/api/v1/services/")) == ["pay-api"]
    assert _names(reader.get("/api/v1/binaries/"), "service") == ["pay-api"]
    assert _names(reader.get("/api/v1/deployments/"), "service") == ["pay-api"]
    assert _names(reader.get("/api/v1/releases/"), "service") == ["pay-api"]
    orders = world["orders"]
    by_deployment = reader.get("/api/v1/releases/", {"deployment": orders["deployment"].pk})
    assert _names(by_deployment) == []


def test_m4_another_teams_objects_are_404_not_403(world, token_client, service_team):
    reader = token_client(service_team, READ_ALL + ["deployments:write"])
    orders = world["orders"]
    deployment, release = orders["deployment"].pk, orders["release"].pk
    for url in (
        "/api/v1/services/orders-api/",
        f"/api/v1/deployments/{deployment}/",
        f"/api/v1/deployments/{deployment}/releases/",
        f"/api/v1/releases/{release}/",
        f"/api/v1/releases/{release}/manifest.yaml",
    ):
        response = reader.get(url)
        assert response.status_code == 404, url
        assert "orders-api" not in response.content.decode(), url
    # the ids of another team's deployment and release are not there to write to either
    assert reader.post(f"/api/v1/deployments/{deployment}/releases/", {}).status_code == 404
    assert reader.post(f"/api/v1/releases/{release}/rollback/").status_code == 404
    assert orders["deployment"].releases.count() == 1
    own = reader.get(f"/api/v1/releases/{world['pay']['release'].pk}/manifest.yaml")
    assert own.status_code == 200 and "pay-api" in own.content.decode()


def test_m4_platform_reads_every_team(world, token_client, platform_team, admin_user, api):
    reader = token_client(platform_team, READ_ALL)
    assert _names(reader.get("/api/v1/services/")) == ["orders-api", "pay-api"]
    assert _names(reader.get("/api/v1/binaries/"), "service") == ["orders-api", "pay-api"]
    assert _names(reader.get("/api/v1/deployments/"), "service") == ["orders-api", "pay-api"]
    assert _names(reader.get("/api/v1/releases/"), "service") == ["orders-api", "pay-api"]
    manifest = f"/api/v1/releases/{world['orders']['release'].pk}/manifest.yaml"
    assert reader.get(manifest).status_code == 200
    # the environment's fetch token (platform team, binaries:read only) downloads every team's
    fetch = environment_fetch_token_create(
        environment=world["environment"], actor=Actor(user=admin_user)
    )
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {fetch.secret}")
    for key in ("pay", "orders"):
        download = api.get(f"/api/v1/binaries/{world[key]['binary'].pk}/download/")
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == f"the {key} binary".encode()


def test_m4_platform_team_members_below_admin_read_every_team(world, client, make_user):
    viewer = make_user("platform-viewer", Team.objects.get(is_platform=True), Role.VIEWER)
    client.force_login(viewer)
    page = client.get("/services/").content.decode()
    assert 'href="/services/orders-api/"' in page and 'href="/services/pay-api/"' in page
    assert client.get(f"/deployments/{world['orders']['deployment'].pk}/").status_code == 200


def _sync_entries(response) -> list[str]:
    assert response.status_code == 200, response.content
    config_map, _ = yaml.safe_load_all(response.content)
    return [line.split("\t")[0] for line in config_map["data"]["entries.tsv"].splitlines()]


def test_m4_hostpath_sync_shows_a_service_team_only_its_own_entries(
    world, token_client, service_team, platform_team
):
    url = "/api/v1/environments/prod/hostpath-sync.yaml"
    team = _sync_entries(token_client(service_team, ["deployments:read"]).get(url))
    assert team == ["pay-api"]
    platform = _sync_entries(token_client(platform_team, ["deployments:read"]).get(url))
    assert platform == ["orders-api", "pay-api"]


def test_m4_ui_answers_404_for_another_teams_objects(world, client, admin_user):
    orders = world["orders"]
    client.force_login(world["pay"]["user"])
    page = client.get("/services/").content.decode()
    assert 'href="/services/pay-api/"' in page
    assert "orders-api" not in page
    deployment, release = orders["deployment"].pk, orders["release"].pk
    for url in (
        "/services/orders-api/",
        f"/deployments/{deployment}/",
        f"/deployments/{deployment}/diff/?a=1&b=1",
        f"/releases/{release}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/deployments/{deployment}/", {}).status_code == 404
    # ids addressed by a button: another team's binary and release are 404 as well
    binary = orders["binary"].pk
    for url in (f"/binaries/{binary}/yank/", f"/binaries/{binary}/artifact/"):
        assert client.post(url).status_code == 404, url
    assert client.post(f"/releases/{release}/rollback/").status_code == 404
    assert orders["deployment"].releases.count() == 1
    orders["binary"].refresh_from_db()
    assert orders["binary"].state == "active"
    environment = client.get("/environments/prod/").content.decode()
    assert "pay-api" in environment and "orders-api" not in environment
    assert client.get(f"/deployments/{world['pay']['deployment'].pk}/").status_code == 200
    # a platform admin sees both teams' pages
    client.force_login(admin_user)
    assert client.get(f"/deployments/{deployment}/").status_code == 200
    assert client.get(f"/releases/{release}/").status_code == 200
    assert "orders-api" in client.get("/environments/prod/").content.decode()


@pytest.mark.parametrize("size", [5, 40])
def test_m4_scoped_lists_keep_a_constant_query_count(
    token_client, service_team, django_assert_max_num_queries, size
):
    other = Team.objects.create(name="orders")
    environment = EnvironmentFactory(name="prod")
    runtime = ImageVersionFactory()
    for index in range(50):
        for team in (service_team, other):
            DeploymentFactory(
                service=ServiceFactory(name=f"{team.name}-{index}", team=team),
                environment=environment,
                runtime_version=runtime,
            )
    reader = token_client(service_team, READ_ALL)
    for url in ("/api/v1/services/", "/api/v1/binaries/", "/api/v1/deployments/"):
        reader.get(url)
        with django_assert_max_num_queries(4):  # token, count, page, (deployments of binaries)
            response = reader.get(url, {"page_size": size})
        if url == "/api/v1/binaries/":  # a keyset list: no count, a cursor to the next page
            assert response.json()["next"] and "count" not in response.json()
        else:
            assert response.json()["count"] == 50, url
        assert len(response.json()["results"]) == size
