"""A rebase on real parts, end to end: a patched `runtime/debian` version is requested as a
Dockerfile on the bootstrapped bookworm image, built by buildah, scanned by syft and published
through the API; the publish drafts the rebase plan; the plan is applied through the API; the
canary's release waits for CD's healthy report; every wave follows; the image-mode deployment is
rebuilt by buildah on the new digest (skopeo reads the pushed image's base-digest label back).
Nothing stands in for the builder, the scanner, the verdict or the registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from deployments.models import BinaryVersion, Deployment, Plan, PlanItem, Release, Service
from deployments.services import release_create
from images.models import ImageVersion
from portal.actors import Actor
from portal.jobs import job_execute
from portal.models import Job
from tests.deployments import build_support
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory
from tests.images.scan_fixtures import scan_settings_fixture  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
build_env = build_support.build_env  # the fixture

PATCH = (
    "FROM runtime/debian:12\nENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n"
    "RUN echo patched > /etc/bip-patch.txt\n"
)


def skopeo_config(reference: str) -> dict:
    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--config", f"docker://{reference}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_queued(kind: str) -> list[str]:
    """Run every queued job of `kind` as a worker would; their end states."""
    out = []
    for job in Job.objects.filter(kind=kind, state="queued").order_by("pk"):
        state = job_execute(job.pk)
        assert state == "succeeded", Job.objects.get(pk=job.pk).error
        out.append(state)
    return out


def upload(client, service: str, path: Path, version: str) -> BinaryVersion:
    with path.open("rb") as fh:
        response = client.post(
            f"/api/v1/services/{service}/binaries/",
            {
                "file": fh,
                "version": version,
                "arch": "x86_64",
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            },
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    return BinaryVersion.objects.get(pk=response.json()["id"])


@pytest.fixture
def fleet(build_env, service_team, token_client, elf_files, scan_settings):
    """Four volume-mode deployments of `orders` and `ledger` in dev, staging and prod, each
    with a first release on `runtime/debian:12`, and one image-mode deployment in staging."""
    settings = scan_settings
    settings.PORTAL_AUTO_PUBLISH = False
    settings.PORTAL_PLAN_WAVE_SIZE = 2
    settings.PORTAL_URL = "https://portal.example.com"
    dev = token_client(service_team, ["binaries:read", "binaries:write"])
    runtime = build_env["runtime"]
    envs = {
        name: EnvironmentFactory(name=name, namespace=f"payments-{name}")
        for name in ("dev", "staging", "prod")
    }
    deployments = []
    for service_name, layout in (("orders", ("dev", "staging", "prod")), ("ledger", ("prod",))):
        Service.objects.create(name=service_name, team=service_team, language="c")
        binary = upload(dev, service_name, elf_files["hello"], "1.0.0")
        for env in layout:
            deployments.append(
                DeploymentFactory(
                    service=binary.service,
                    environment=envs[env],
                    runtime_version=runtime,
                    binary_version=binary,
                    mode="volume",
                )
            )
    Service.objects.create(name="gateway", team=service_team, language="c")
    static = upload(dev, "gateway", elf_files["hello-static"], "3.0.0")
    image_mode = DeploymentFactory(
        service=static.service,
        environment=envs["staging"],
        runtime_version=runtime,
        binary_version=static,
        mode="image",
    )
    actor = Actor.system_actor("cd")
    for deployment in deployments:
        release_create(actor=actor, deployment=deployment)
    return {"volume": deployments, "image": image_mode, "runtime": runtime}


def test_publish_plan_canary_healthy_all_released(
    fleet, build_env, clients, token_client, service_team, django_capture_on_commit_callbacks
):
    old = fleet["runtime"]
    host = build_env["registry"].host

    # 1. the patch: a Dockerfile request on the bootstrapped base, built, scanned, published
    body = {
        "name": "runtime/debian",
        "tag": "12-p1",
        "kind": "runtime",
        "os_family": "debian",
        "os_version": "12",
        "recipe_kind": "dockerfile",
        "recipe": PATCH,
        "justification": "openssl patch",
        "submit": True,
    }
    response = clients["platform"].post("/api/v1/image-requests/", body, format="json")
    assert response.status_code == 201, response.json()
    response = clients["admin"].post(f"/api/v1/image-requests/{response.json()['id']}/approve/")
    assert response.status_code == 202, response.json()
    assert job_execute(response.json()["job"]["id"]) == "succeeded"
    new = ImageVersion.objects.get(base_image=old.base_image, tag="12-p1")
    assert new.state == "candidate" and new.base_digest == old.digest
    response = clients["admin"].post(f"/api/v1/image-versions/{new.pk}/scan/")
    assert response.status_code == 202, response.json()
    run_queued("images.scan")
    new.refresh_from_db()
    assert new.sbom.abi.libc_version == "2.36"  # read from the pushed image by the scanner
    with django_capture_on_commit_callbacks(execute=True):
        response = clients["admin"].post(f"/api/v1/image-versions/{new.pk}/publish/")
    assert response.status_code == 200, response.json()

    # 2. the publish drafted the plan: every deployment on the old digest, with its verdict
    plan = Plan.objects.get(kind="rebase")
    assert (plan.state, plan.from_version_id, plan.to_version_id) == ("draft", old.pk, new.pk)
    response = clients["admin"].get(f"/api/v1/rebase-plans/{plan.pk}/items/?page_size=100")
    assert response.status_code == 200
    items = response.json()["results"]
    assert len(items) == 5
    assert {i["verdict"] for i in items} == {"compatible"}
    canary = PlanItem.objects.get(plan=plan, wave=0)
    assert canary.deployment.environment.name == "dev" and canary.deployment.mode == "volume"

    # 3. apply: the canary wave only
    response = clients["admin"].post(f"/api/v1/rebase-plans/{plan.pk}/apply/")
    assert response.status_code == 200, response.json()
    run_queued("deployments.plan_wave")
    canary.refresh_from_db()
    assert canary.state == "released"
    release = canary.release
    assert release.base_digest == new.digest
    assert release.binary_version_id == canary.deployment.binary_version_id  # no rebuild
    manifest = yaml.safe_load(release.manifest_yaml)
    assert manifest["spec"]["template"]["spec"]["containers"][0]["image"].endswith(new.digest)
    assert PlanItem.objects.filter(plan=plan, state="released").count() == 1

    # 4. CD's reports move it on: deployed holds the wave, healthy opens the next one
    cd = token_client(service_team, ["deployments:read", "deployments:write"])
    url = f"/api/v1/releases/{release.pk}/status/"
    assert cd.post(url, {"status": "deployed"}, format="json").status_code == 200
    run_queued("deployments.plan_wave")
    assert PlanItem.objects.filter(plan=plan, state="released").count() == 1
    assert cd.post(url, {"status": "healthy", "note": "ok"}, format="json").status_code == 200
    for _ in range(10):
        plan.refresh_from_db()
        if plan.state != "applying":
            break
        run_queued("deployments.plan_wave")
        run_queued("deployments.app_image_build")
        for item in PlanItem.objects.filter(plan=plan, state="released"):
            if item.release.status not in ("healthy",):
                response = cd.post(
                    f"/api/v1/releases/{item.release_id}/status/",
                    {"status": "healthy"},
                    format="json",
                )
                assert response.status_code == 200, response.json()
    plan.refresh_from_db()
    assert plan.state == "completed", (
        plan.error,
        plan.current_wave,
        list(PlanItem.objects.filter(plan=plan).values_list("wave", "state", "error")),
        list(Job.objects.values_list("kind", "state", "error")),
    )
    assert set(PlanItem.objects.filter(plan=plan).values_list("state", flat=True)) == {"healthy"}
    assert not Deployment.objects.filter(runtime_version=old).exists()
    # one new release per deployment, on the new digest, and no second one for the target
    assert Release.objects.filter(base_digest=new.digest).count() == 5
    assert Release.objects.filter(base_digest=old.digest).count() == 4

    # 5. the image-mode deployment was rebuilt by buildah on the new base
    image_mode = Deployment.objects.get(pk=fleet["image"].pk)
    assert image_mode.app_image.startswith(f"{host}/apps/gateway@sha256:")
    config = skopeo_config(image_mode.app_image)
    assert config["config"]["Labels"]["org.opencontainers.image.base.digest"] == new.digest
    assert image_mode.app_image in image_mode.releases.latest("number").manifest_yaml


@pytest.fixture
def clients(token_client, platform_team, admin_user, api):
    api.force_login(admin_user)
    return {"platform": token_client(platform_team, ["images:read", "images:write"]), "admin": api}
