"""Environments, deployments and releases through the API: every strategy, refusals, rollback."""

from __future__ import annotations

import pytest
import yaml

from deployments.manifests.validation import validate_manifest
from deployments.models import Deployment, Environment, Release
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _portal_url(settings):
    settings.PORTAL_URL = "https://portal.example.com"


@pytest.fixture
def deployer(token_client, service_team):
    return token_client(service_team, ["deployments:read", "deployments:write"])


@pytest.fixture
def service(service_team):
    return ServiceFactory(name="orders", team=service_team)


@pytest.fixture
def runtime():
    return ImageVersionFactory(base_image__name="runtime/debian")


def make_deployment(service, runtime, strategy="hostPath", k8s="1.33", **kwargs) -> Deployment:
    env = EnvironmentFactory(
        name=f"env-{strategy.lower()}-{k8s.replace('.', '-')}",
        namespace="payments",
        delivery_strategy=strategy,
        k8s_version=k8s,
    )
    return DeploymentFactory(service=service, environment=env, runtime_version=runtime, **kwargs)


def release_url(deployment) -> str:
    return f"/api/v1/deployments/{deployment.pk}/releases/"


def test_environment_create_is_for_platform_admins(token_client, platform_team, service_team):
    body = {
        "name": "staging",
        "namespace": "payments-staging",
        "k8s_version": "1.34",
        "delivery_strategy": "initFetch",
    }
    admin = token_client(platform_team, ["deployments:write", "deployments:read"])
    response = admin.post("/api/v1/environments/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["hostpath_sync_url"] == "/api/v1/environments/staging/hostpath-sync.yaml"
    assert admin.post("/api/v1/environments/", body, format="json").status_code == 409
    dev = token_client(service_team, ["deployments:write"])
    refused = dev.post("/api/v1/environments/", {**body, "name": "qa"}, format="json")
    assert refused.status_code == 403
    assert "platform admins" in refused.json()["detail"]
    bad = admin.post(
        "/api/v1/environments/", {**body, "name": "x", "k8s_version": "latest"}, format="json"
    )
    assert bad.status_code == 400
    assert "Kubernetes version" in bad.json()["detail"]


def test_deployment_create_and_first_release_hostpath(deployer, service, runtime):
    env = EnvironmentFactory(name="prod", namespace="payments-prod")
    binary = BinaryVersionFactory(service=service, version="1.4.2")
    response = deployer.post(
        "/api/v1/deployments/",
        {
            "service": "orders",
            "environment": "prod",
            "runtime_version": runtime.pk,
            "binary_version": binary.pk,
            "ports": [8080],
            "env": [{"name": "GREETING", "value": "key: {{ value }}\nline two"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["args"] == ["-m", "release"]
    deployment_id = response.json()["id"]
    created = deployer.post(f"/api/v1/deployments/{deployment_id}/releases/", {}, format="json")
    assert created.status_code == 201, created.json()
    release = created.json()
    assert release["number"] == 1
    assert release["strategy"] == "hostPath"
    assert release["binary_sha256"] == binary.sha256
    assert release["base_digest"] == runtime.digest
    assert release["validation"]["valid"] is True
    manifest = yaml.safe_load(release["manifest_yaml"])
    pod = manifest["spec"]["template"]["spec"]
    assert pod["volumes"][0]["hostPath"]["path"] == "/data/bin/orders/1.4.2"
    container = pod["containers"][0]
    assert container["image"] == runtime.pull_ref
    assert container["args"] == ["-m", "release"]
    assert container["env"] == [{"name": "GREETING", "value": "key: {{ value }}\nline two"}]
    assert validate_manifest(release["manifest_yaml"], env.k8s_version).valid
    text = deployer.get(release["manifest_url"])
    assert text.status_code == 200
    assert text["Content-Type"].startswith("text/yaml")
    assert text.content.decode() == release["manifest_yaml"]
    assert deployer.get(release["manifest_url"], HTTP_ACCEPT="text/yaml").status_code == 200
    # Nodes get the binary from the DaemonSet of the environment.
    sync = deployer.get("/api/v1/environments/prod/hostpath-sync.yaml")
    assert sync.status_code == 200
    docs = list(yaml.safe_load_all(sync.content))
    assert [d["kind"] for d in docs] == ["ConfigMap", "DaemonSet"]
    entries = docs[0]["data"]["entries.tsv"]
    assert binary.sha256 in entries
    assert f"https://portal.example.com/api/v1/binaries/{binary.pk}/download/" in entries
    assert validate_manifest(sync.content.decode(), "1.33").valid


def test_release_init_fetch_downloads_from_the_portal(deployer, service, runtime):
    deployment = make_deployment(service, runtime, "initFetch")
    response = deployer.post(release_url(deployment), {}, format="json")
    assert response.status_code == 201, response.json()
    pod = yaml.safe_load(response.json()["manifest_yaml"])["spec"]["template"]["spec"]
    init_env = {e["name"]: e.get("value") for e in pod["initContainers"][0]["env"]}
    assert pod["initContainers"][0]["env"][-1] == {
        "name": "PORTAL_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "portal-fetch-token", "key": "token"}},
    }
    bv = deployment.binary_version
    assert init_env["BINARY_URL"] == (
        f"https://portal.example.com/api/v1/binaries/{bv.pk}/download/"
    )
    assert init_env["BINARY_SHA256"] == bv.sha256


def test_release_image_volume_needs_135(deployer, service, runtime):
    artifact = "127.0.0.1:5000/binaries/orders@sha256:" + "ab" * 32
    old = make_deployment(
        service, runtime, "imageVolume", "1.33", binary_version__artifact_ref=artifact
    )
    refused = deployer.post(release_url(old), {}, format="json")
    assert refused.status_code == 400
    assert "image volumes need Kubernetes 1.35 or newer" in refused.json()["detail"]
    assert Release.objects.count() == 0
    new = make_deployment(
        service, runtime, "imageVolume", "1.35", binary_version=old.binary_version
    )
    created = deployer.post(release_url(new), {}, format="json")
    assert created.status_code == 201, created.json()
    pod = yaml.safe_load(created.json()["manifest_yaml"])["spec"]["template"]["spec"]
    assert pod["volumes"][0]["image"]["reference"] == artifact


def test_release_image_volume_without_artifact_is_400(deployer, service, runtime):
    deployment = make_deployment(service, runtime, "imageVolume", "1.35")
    response = deployer.post(release_url(deployment), {}, format="json")
    assert response.status_code == 400
    assert "binary_artifact_ref" in response.json()["detail"]


def test_release_image_mode_gives_a_dockerfile(deployer, service, runtime):
    deployment = make_deployment(service, runtime, mode="image")
    response = deployer.post(release_url(deployment), {}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["strategy"] == "image"
    assert body["dockerfile"].startswith(f"FROM {runtime.pull_ref}\n")
    assert 'CMD ["/opt/app/application", "-m", "release"]' in body["dockerfile"]
    assert body["manifest_yaml"] == ""
    assert deployer.get(body["manifest_url"]).status_code == 404
    Deployment.objects.filter(pk=deployment.pk).update(
        app_image="127.0.0.1:5000/apps/orders@sha256:" + "cd" * 32
    )
    second = deployer.post(release_url(deployment), {}, format="json").json()
    assert yaml.safe_load(second["manifest_yaml"])["kind"] == "Deployment"


def test_validation_failure_stores_nothing(deployer, service, runtime, monkeypatch):
    """A renderer regression (an unknown field) is caught by the real strict validator."""
    from deployments.services import releases

    real = releases.render_deployment

    def regressed(m, *, k8s_version):
        return real(m, k8s_version=k8s_version).replace("replicas:", "replicaz:", 1)

    monkeypatch.setattr(releases, "render_deployment", regressed)
    deployment = make_deployment(service, runtime)
    response = deployer.post(release_url(deployment), {}, format="json")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "strict validation failed" in detail
    assert "replicaz" in detail
    assert Release.objects.count() == 0


def test_renderer_refusal_is_400(deployer, service, runtime):
    deployment = make_deployment(service, runtime, resources={"cpu_request": "lots"})
    response = deployer.post(release_url(deployment), {}, format="json")
    assert response.status_code == 400
    assert "cpu_request must be a Kubernetes quantity" in response.json()["detail"]
    assert Release.objects.count() == 0


def test_new_binary_rollback_and_yank(deployer, token_client, service_team, service, runtime):
    deployment = make_deployment(service, runtime)
    first = deployment.binary_version
    second = BinaryVersionFactory(service=service, version="2.0.0")
    r1 = deployer.post(release_url(deployment), {}, format="json").json()
    r2 = deployer.post(release_url(deployment), {"binary_version": second.pk}, format="json")
    assert r2.status_code == 201
    assert r2.json()["number"] == 2
    assert r2.json()["binary_sha256"] == second.sha256
    rollback = deployer.post(f"/api/v1/releases/{r1['id']}/rollback/")
    assert rollback.status_code == 201, rollback.json()
    r3 = rollback.json()
    assert (r3["number"], r3["rollback_of"], r3["binary_sha256"]) == (3, 1, first.sha256)
    deployment.refresh_from_db()
    assert deployment.binary_version_id == first.pk

    binaries = token_client(service_team, ["binaries:write"])
    yanked = binaries.post(f"/api/v1/binaries/{second.pk}/yank/")
    assert yanked.status_code == 200
    assert yanked.json()["state"] == "yanked"
    assert binaries.post(f"/api/v1/binaries/{second.pk}/yank/").status_code == 409
    refused = deployer.post(release_url(deployment), {"binary_version": second.pk}, format="json")
    assert refused.status_code == 400
    assert "is yanked and cannot go into a new release" in refused.json()["detail"]
    assert deployer.post(f"/api/v1/releases/{r2.json()['id']}/rollback/").status_code == 400
    # The existing release that uses it keeps working.
    assert deployer.get(r2.json()["manifest_url"]).status_code == 200
    assert Release.objects.count() == 3
    listed = deployer.get(release_url(deployment)).json()["results"]
    assert [r["number"] for r in listed] == [3, 2, 1]


def test_runtime_version_must_be_approved(deployer, service, runtime):
    deployment = make_deployment(service, runtime)
    for state in ("revoked", "superseded", "candidate"):
        other = ImageVersionFactory(base_image=runtime.base_image, state=state)
        response = deployer.post(
            release_url(deployment), {"runtime_version": other.pk}, format="json"
        )
        assert response.status_code == 400
        assert f"is {state}; only approved runtime versions" in response.json()["detail"]
    build = ImageVersionFactory(base_image__kind="build", base_image__name="build/gcc")
    response = deployer.post(release_url(deployment), {"runtime_version": build.pk}, format="json")
    assert response.status_code == 400
    assert "deploy on a runtime image" in response.json()["detail"]
    assert Release.objects.count() == 0


def test_rollback_may_return_to_superseded_but_not_revoked(deployer, service, runtime):
    deployment = make_deployment(service, runtime)
    r1 = deployer.post(release_url(deployment), {}, format="json").json()
    newer = ImageVersionFactory(base_image=runtime.base_image)
    deployer.post(release_url(deployment), {"runtime_version": newer.pk}, format="json")
    runtime.state = "superseded"
    runtime.save()
    assert deployer.post(f"/api/v1/releases/{r1['id']}/rollback/").status_code == 201
    runtime.state = "revoked"
    runtime.save()
    response = deployer.post(f"/api/v1/releases/{r1['id']}/rollback/")
    assert response.status_code == 400
    assert "revoked" in response.json()["detail"]


def test_other_team_cannot_release(token_client, service, runtime):
    from portal.models import Team

    deployment = make_deployment(service, runtime)
    other = token_client(Team.objects.create(name="search"), ["deployments:write"])
    # Another team's deployment does not exist for this token (M4: 404, so ids do not leak).
    response = other.post(release_url(deployment), {}, format="json")
    assert response.status_code == 404
    assert Release.objects.count() == 0
    reader = other.post(f"/api/v1/deployments/{deployment.pk}/releases/", {}, format="json")
    assert reader.status_code == 404


def test_binary_of_another_service_is_refused(deployer, service, runtime):
    deployment = make_deployment(service, runtime)
    foreign = BinaryVersionFactory()
    response = deployer.post(release_url(deployment), {"binary_version": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "belongs to" in response.json()["detail"]
    missing = deployer.post(release_url(deployment), {"binary_version": 999999}, format="json")
    assert missing.status_code == 400


def test_duplicate_deployment_is_409(deployer, service, runtime):
    deployment = make_deployment(service, runtime)
    response = deployer.post(
        "/api/v1/deployments/",
        {
            "service": "orders",
            "environment": deployment.environment.name,
            "runtime_version": runtime.pk,
        },
        format="json",
    )
    assert response.status_code == 409
    bad = deployer.post(
        "/api/v1/deployments/",
        {
            "service": "orders",
            "environment": EnvironmentFactory(name="qa").name,
            "runtime_version": runtime.pk,
            "ports": [70000],
            "env": {"1BAD": "x"},
        },
        format="json",
    )
    assert bad.status_code == 400
    assert "ports must be a list of integers" in bad.json()["detail"]


def test_hostpath_sync_lists_only_live_hostpath_releases(deployer, service, runtime):
    deployment = make_deployment(service, runtime)
    old = deployment.binary_version
    new = BinaryVersionFactory(service=service, version="9.9.9")
    deployer.post(release_url(deployment), {}, format="json")
    deployer.post(release_url(deployment), {"binary_version": new.pk}, format="json")
    env = deployment.environment.name
    text = deployer.get(f"/api/v1/environments/{env}/hostpath-sync.yaml").content.decode()
    assert new.sha256 in text
    assert old.sha256 not in text
    assert deployer.get("/api/v1/environments/nope/hostpath-sync.yaml").status_code == 404


def test_environment_list(deployer):
    EnvironmentFactory(name="dev", namespace="dev")
    assert [e["name"] for e in deployer.get("/api/v1/environments/").json()["results"]] == ["dev"]
    assert Environment.objects.count() == 1
