"""Real builds: buildah and mmdebstrap, pushed to Debian's docker-registry started by the tests.

The Debian base is bootstrapped once per session by the shared `debian_base_image` fixture
(its rootfs tar is cached); the bootstrap job here reuses that tar through
PORTAL_BOOTSTRAP_CACHE_DIR, and the Dockerfile builds run FROM that image.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from images.models import BaseImage, ImageRequest, ImageVersion, Registry
from images.services import image_version_record
from portal.actors import Actor
from portal.jobs import job_create, job_execute
from portal.models import Job
from tests.fixtures.registry import CACHE_DIR, put_image

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ENV_LINE = "ENV TZ=Asia/Shanghai LANG=en_US.utf8 LC_ALL=en_US.utf8\n"


def skopeo_inspect(reference: str) -> dict:
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def record_debian_base(running_registry, debian_base_image, platform_team):
    """The test registry as the default Registry, `runtime/debian` in the catalog and its
    approved `12` version on the session's real bookworm image: (registry, image, version)."""
    registry = Registry.objects.create(
        name="test", url=running_registry.url, tls_verify=False, is_default=True
    )
    image = BaseImage.objects.create(
        name="runtime/debian",
        kind="runtime",
        os_family="debian",
        os_version="12",
        owner_team=platform_team,
        registry=registry,
    )
    _, digest = debian_base_image
    version, _ = image_version_record(
        actor=Actor.system_actor("test"),
        image=image,
        registry=registry,
        tag="12",
        digest=digest,
        size=None,
        arch="amd64",
        state="approved",
    )
    return registry, image, version


@pytest.fixture
def build_env(
    settings, buildah_config, running_registry, debian_base_image, platform_team, tmp_path
):
    settings.PORTAL_BUILDAH_ROOT = buildah_config.storage_root
    settings.PORTAL_BUILDAH_RUNROOT = buildah_config.run_root
    settings.PORTAL_BUILD_WORK_DIR = str(tmp_path)
    settings.PORTAL_BUILD_REGISTRY_RETRIES = 2
    settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS = 0.1
    settings.PORTAL_BOOTSTRAP_CACHE_DIR = str(CACHE_DIR)
    settings.PORTAL_AUTO_PUBLISH = False
    settings.JOB_HEARTBEAT_SECONDS = 3600  # the test transaction holds the job row
    registry, image, base = record_debian_base(running_registry, debian_base_image, platform_team)
    return {"registry": registry, "image": image, "base": base, "buildah": buildah_config}


@pytest.fixture
def clients(token_client, service_team, admin_user, api):
    api.force_login(admin_user)
    return {"dev": token_client(service_team, ["images:read", "images:write"]), "admin": api}


def tag_missing(reference: str) -> bool:
    """True when the registry has no such tag (skopeo says "manifest unknown")."""
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reference}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.returncode != 0 and "manifest unknown" in out.stderr


def request_body(recipe: str, tag: str) -> dict:
    return {
        "name": "runtime/debian-hello",
        "tag": tag,
        "kind": "runtime",
        "os_family": "debian",
        "os_version": "12",
        "recipe_kind": "dockerfile",
        "recipe": recipe,
        "justification": "tests",
        "submit": True,
    }


def request_and_approve(clients, recipe: str, tag: str) -> tuple[int, int]:
    body = request_body(recipe, tag)
    response = clients["dev"].post("/api/v1/image-requests/", body, format="json")
    assert response.status_code == 201, response.json()
    request_id = response.json()["id"]
    response = clients["admin"].post(f"/api/v1/image-requests/{request_id}/approve/")
    assert response.status_code == 202, response.json()
    return request_id, response.json()["job"]["id"]


def test_bootstrap_job_pushes_and_records_the_registry_digest(build_env, platform_team):
    registry = build_env["registry"]
    image = BaseImage.objects.create(
        name="runtime/debian-boot",
        kind="runtime",
        os_family="debian",
        os_version="12",
        owner_team=platform_team,
        registry=registry,
    )
    job, _ = job_create(
        kind="images.build",
        actor=Actor.system_actor("test"),
        params={
            "image_id": image.pk,
            "tag": "12",
            "recipe_kind": "bootstrap",
            "recipe": "suite: bookworm\nvariant: minbase\n",
            "publish": True,
        },
    )
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert "reusing the cached root filesystem" in job.log
    version = ImageVersion.objects.get(base_image=image)
    assert version.state == "approved"  # the portal's own builds publish at once
    inspected = skopeo_inspect(f"{registry.host}/runtime/debian-boot:12")
    assert version.digest == inspected["Digest"]
    # M2: the bootstrap pushed under the staging tag; the auto-publish moved the public tag.
    staged = skopeo_inspect(f"{registry.host}/runtime/debian-boot:12-candidate-{job.pk}")
    assert staged["Digest"] == version.digest
    assert f"runtime/debian-boot:12-candidate-{job.pk}" in job.log
    assert version.arch == inspected["Architecture"] == "amd64"
    labels = inspected["Labels"]
    assert labels["io.baseimage.portal.recipe-sha256"] == version.recipe_sha256
    assert labels["org.opencontainers.image.title"] == "runtime/debian-boot"
    assert {"TZ=Asia/Shanghai", "LANG=en_US.utf8", "LC_ALL=en_US.utf8"} <= set(inspected["Env"])
    assert version.build_job_id == job.pk and version.base_digest == ""
    assert job.result["digest"] == version.digest


def test_dockerfile_request_is_built_pushed_recorded_published_and_reused(build_env, clients):
    recipe = f"FROM runtime/debian:12\n{ENV_LINE}RUN echo hello > /hello.txt\n"
    request_id, job_id = request_and_approve(clients, recipe, "12-1")
    assert job_execute(job_id) == "succeeded", Job.objects.get(pk=job_id).error
    job = Job.objects.get(pk=job_id)
    request = ImageRequest.objects.get(pk=request_id)
    assert request.state == "scanning"
    version = request.image_version
    assert version.state == "candidate"
    assert version.base_digest == build_env["base"].digest
    assert version.recipe == recipe and len(version.recipe_sha256) == 64
    assert "STEP 2/" in job.log and ": ENV TZ=Asia/Shanghai" in job.log
    assert job.progress == 100
    assert f"base pinned: {build_env['base'].pull_ref}" in job.log
    # Changed with M2: the candidate is pushed under a staging tag, not the public one.
    host = build_env["registry"].host
    inspected = skopeo_inspect(f"{host}/runtime/debian-hello:12-1-candidate-{job_id}")
    assert inspected["Digest"] == version.digest
    assert inspected["Labels"]["org.opencontainers.image.base.digest"] == version.base_digest
    assert tag_missing(f"{host}/runtime/debian-hello:12-1")
    # The catalog entry was created for the new image name.
    assert version.base_image.name == "runtime/debian-hello"
    # Publish: candidate → approved, request → published, the public tag → the digest.
    response = clients["admin"].post(f"/api/v1/image-versions/{version.pk}/publish/")
    assert response.status_code == 200, response.json()
    assert ImageRequest.objects.get(pk=request_id).state == "published"
    assert skopeo_inspect(f"{host}/runtime/debian-hello:12-1")["Digest"] == version.digest
    # Changed with M2: the same tag again is refused (versions are immutable) …
    body = {**request_body(recipe, "12-1")}
    response = clients["dev"].post("/api/v1/image-requests/", body, format="json")
    assert response.status_code == 409 and response.json()["code"] == "tag_exists"
    # … and the same recipe on the same base digest under a new tag is not rebuilt.
    count = ImageVersion.objects.count()
    request_id, job_id = request_and_approve(clients, recipe, "12-2")
    assert job_execute(job_id) == "succeeded"
    job = Job.objects.get(pk=job_id)
    assert "reusing existing version" in job.log and "no rebuild" in job.log
    assert "STEP" not in job.log
    assert ImageVersion.objects.count() == count
    request = ImageRequest.objects.get(pk=request_id)
    assert request.image_version_id == version.pk and request.state == "published"
    assert job.result["reused"] is True


def test_m2_build_push_does_not_move_the_public_tag_until_publish(build_env, clients):
    """The review's M2: a build used to push to `<name>:<tag>` before anyone published."""
    registry = build_env["registry"]
    public = f"{registry.host}/runtime/debian-hello:12-9"
    before = put_image(registry.url, "runtime/debian-hello", "12-9")  # what pulls get today
    recipe = f"FROM runtime/debian:12\n{ENV_LINE}RUN echo unreviewed > /etc/motd\n"
    request_id, job_id = request_and_approve(clients, recipe, "12-9")
    assert job_execute(job_id) == "succeeded", Job.objects.get(pk=job_id).error
    version = ImageRequest.objects.get(pk=request_id).image_version
    assert version.state == "candidate" and version.digest != before
    assert skopeo_inspect(public)["Digest"] == before  # the push left the public tag alone
    staged = f"{registry.host}/runtime/debian-hello:12-9-candidate-{job_id}"
    assert skopeo_inspect(staged)["Digest"] == version.digest
    resolved = (
        clients["dev"]
        .get("/api/v1/base-images/resolve/", {"ref": "runtime/debian-hello:12-9"})
        .json()
    )
    assert resolved["approved"] is False  # a candidate is not what resolve hands out
    response = clients["admin"].post(f"/api/v1/image-versions/{version.pk}/publish/")
    assert response.status_code == 200, response.json()
    assert skopeo_inspect(public)["Digest"] == version.digest  # publish moved it
    resolved = (
        clients["dev"]
        .get("/api/v1/base-images/resolve/", {"ref": "runtime/debian-hello:12-9"})
        .json()
    )
    assert resolved["approved"] is True and resolved["digest"] == version.digest


def test_run_exit_1_fails_the_job_and_request_and_records_nothing(build_env, clients):
    recipe = f"FROM runtime/debian:12\n{ENV_LINE}RUN echo about to fail && exit 1\n"
    request_id, job_id = request_and_approve(clients, recipe, "12-broken")
    assert job_execute(job_id) == "failed"
    job = Job.objects.get(pk=job_id)
    assert re.search(r"STEP 3/\d+: RUN echo about to fail && exit 1", job.error), job.error
    assert "exit code 1" in job.error
    assert "about to fail" in job.log
    request = ImageRequest.objects.get(pk=request_id)
    assert request.state == "failed" and request.error == job.error
    assert request.image_version is None
    assert not ImageVersion.objects.filter(base_image__name="runtime/debian-hello").exists()
    assert [e.kind for e in request.events.all()][-1] == "failed"


def test_registry_down_is_retried_then_fails_clearly(build_env, clients, running_registry):
    config = build_env["buildah"]
    pull = subprocess.run(
        config.buildah_argv("pull", "--tls-verify=false", build_env["base"].pull_ref),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pull.returncode == 0, pull.stderr
    recipe = f"FROM runtime/debian:12\n{ENV_LINE}RUN echo offline > /offline.txt\n"
    request_id, job_id = request_and_approve(clients, recipe, "12-offline")
    with running_registry.down():
        assert job_execute(job_id) == "failed"
    job = Job.objects.get(pk=job_id)
    assert "stayed unavailable after 3 attempts" in job.error, job.error
    assert "retry 1 of 2" in job.log and "retry 2 of 2" in job.log
    request = ImageRequest.objects.get(pk=request_id)
    assert request.state == "failed" and "unavailable" in request.error
    assert not ImageVersion.objects.filter(base_image__name="runtime/debian-hello").exists()


def test_c1_copy_from_a_catalog_image_is_pinned_by_digest_and_built(build_env, clients):
    base = build_env["base"]
    recipe = (
        f"FROM runtime/debian:12\n{ENV_LINE}COPY --from=runtime/debian:12 /etc/os-release /os\n"
    )
    _, job_id = request_and_approve(clients, recipe, "12-copy")
    assert job_execute(job_id) == "succeeded", Job.objects.get(pk=job_id).error
    job = Job.objects.get(pk=job_id)
    # bud ran with --pull=never: the pinned reference was pulled before, outside the sandbox.
    assert f"COPY --from={base.pull_ref} /etc/os-release /os" in job.log


def test_c1_the_builder_refuses_an_escaping_recipe_even_without_a_policy_check(
    build_env, platform_team
):
    # The portal's own builds skip the request's policy report; the builder still refuses.
    job, _ = job_create(
        kind="images.build",
        actor=Actor.system_actor("test"),
        params={
            "image_id": build_env["image"].pk,
            "tag": "12-escape",
            "recipe_kind": "dockerfile",
            "recipe": "FROM runtime/debian:12\n"
            "RUN --mount=type=cache,target=/x,id=../../../../../../.. ls /x\n",
        },
    )
    assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    assert "refuses this Dockerfile" in job.error and "RUN --mount" in job.error, job.error
    assert "STEP" not in job.log


@pytest.mark.parametrize(
    ("url", "tls_verify", "expected"),
    [
        ("http://127.0.0.1:5000", True, False),  # plain HTTP: buildah must not try HTTPS
        ("https://harbor.example.com", True, True),
        ("https://harbor.example.com", False, False),
    ],
)
def test_builder_config_follows_the_registry_scheme(url, tls_verify, expected, db):
    from images.buildjobs import builder_config
    from images.models import Registry

    registry = Registry(name="r", url=url, tls_verify=tls_verify)
    assert builder_config(registry).tls_verify is expected
