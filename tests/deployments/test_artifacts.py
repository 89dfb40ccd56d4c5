"""A binary pushed to a real registry as an OCI image and mounted with `volumes[].image`.

Real tools: a gcc-compiled ELF uploaded through the API, buildah builds the FROM-scratch image,
Debian's docker-registry (started by the tests) stores it, skopeo reads it back.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from deployments.choices import ARCH_ALIASES
from deployments.jobs import SHA256_LABEL
from deployments.manifests.validation import validate_manifest
from deployments.models import BinaryVersion, Service
from images.builder import oci_architecture
from images.models import Registry
from portal.jobs import job_execute
from portal.models import AuditEntry, Job
from tests.deployments.factories import (
    BinaryVersionFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ServiceFactory,
)
from tests.fixtures.registry import put_image
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db

BINARIES = "/api/v1/services/orders/binaries/"
EM_AARCH64 = 183


def skopeo_raw(reference: str, *flags: str) -> bytes:
    """The exact bytes skopeo reads (`--raw` manifest, or with `--config` the config blob)."""
    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", *flags, f"docker://{reference}"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def skopeo(*args: str) -> str:
    result = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="c")


@pytest.fixture
def dev(token_client, service_team):
    return token_client(
        service_team, ["binaries:read", "binaries:write", "deployments:read", "deployments:write"]
    )


@pytest.fixture
def artifact_env(settings, buildah_config, running_registry, binary_store_dir, tmp_path):
    """buildah storage of the session, the test registry as the catalog's default registry."""
    settings.PORTAL_BUILDAH_ROOT = buildah_config.storage_root
    settings.PORTAL_BUILDAH_RUNROOT = buildah_config.run_root
    settings.PORTAL_BUILD_WORK_DIR = str(tmp_path / "work")
    settings.PORTAL_BUILD_REGISTRY_RETRIES = 2
    settings.PORTAL_BUILD_RETRY_BACKOFF_SECONDS = 0.1
    settings.JOB_HEARTBEAT_SECONDS = 3600  # the test transaction holds the job row
    registry = Registry.objects.create(
        name="test", url=running_registry.url, tls_verify=False, is_default=True
    )
    return {"registry": registry, "oci": running_registry, "buildah": buildah_config}


def upload(client, path: Path, version: str = "1.0.0", arch: str = "x86_64") -> BinaryVersion:
    with path.open("rb") as fh:
        response = client.post(
            BINARIES,
            {"file": fh, "version": version, "arch": arch, "sha256": sha256_of(path)},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    return BinaryVersion.objects.get(pk=response.json()["id"])


def push(client, binary: BinaryVersion) -> Job:
    response = client.post(f"/api/v1/binaries/{binary.pk}/artifact/")
    assert response.status_code == 202, response.json()
    job_id = response.json()["job"]["id"]
    assert response["Location"] == f"/api/v1/jobs/{job_id}/"
    assert response.json()["job"]["kind"] == "deployments.push_artifact"
    return Job.objects.get(pk=job_id)


def local_images(config) -> str:
    return subprocess.run(
        [*config.buildah_argv("images", "--format", "{{.Name}}:{{.Tag}}")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def layer_members(
    reference: str, out: Path
) -> tuple[list[tarfile.TarInfo], dict[str, bytes], dict]:
    """(members, {name: bytes}) of every layer of the image, copied with skopeo."""
    skopeo("copy", "--src-tls-verify=false", f"docker://{reference}", f"dir:{out}")
    manifest = json.loads((out / "manifest.json").read_text())
    members: list[tarfile.TarInfo] = []
    contents: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        blob = out / layer["digest"].split(":", 1)[1]
        with tarfile.open(blob, "r:*") as tar:
            for member in tar.getmembers():
                members.append(member)
                if member.isfile():
                    contents[member.name] = tar.extractfile(member).read()
    return members, contents, manifest


# --- the whole path -------------------------------------------------------------------------


@pytest.mark.slow
def test_push_artifact_then_release_an_image_volume(artifact_env, dev, orders, elf_files, tmp_path):
    binary = upload(dev, elf_files["hello-static"])
    job = push(dev, binary)
    assert job.queue == "builds"
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).log[-3000:]
    job.refresh_from_db()
    binary.refresh_from_db()
    host = artifact_env["registry"].host

    # artifact_ref is the digest the registry serves (what skopeo sees)
    tag_ref = f"{host}/binaries/orders:1.0.0-x86_64"
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{tag_ref}"))
    assert binary.artifact_ref == f"{host}/binaries/orders@{inspected['Digest']}"
    assert job.result["artifact_ref"] == binary.artifact_ref
    assert job.result["reused"] is False
    assert inspected["Labels"]["io.baseimage.portal.binary-sha256"] == binary.sha256
    assert inspected["Labels"]["org.opencontainers.image.title"] == "binaries/orders"
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")
    assert "pushing to" in job.log and job.progress == 100
    audit = AuditEntry.objects.filter(action="binary_version.artifact").get()
    assert audit.after == {"artifact_ref": binary.artifact_ref}

    # the image holds exactly the binary: /hello-static, 0555, root, the uploaded bytes
    members, contents, _ = layer_members(binary.artifact_ref, tmp_path / "copy")
    assert [m.name for m in members] == ["hello-static"]
    (only,) = members
    assert only.isfile()
    assert only.mode & 0o7777 == 0o555
    assert (only.uid, only.gid) == (0, 0)
    assert hashlib.sha256(next(iter(contents.values()))).hexdigest() == binary.sha256
    # the local image was removed after the push
    assert "bip-artifact/orders" not in local_images(artifact_env["buildah"])

    # a release on an imageVolume environment (Kubernetes 1.35) mounts that digest
    deployment = DeploymentFactory(
        service=orders,
        environment=EnvironmentFactory(
            name="vol", namespace="payments", delivery_strategy="imageVolume", k8s_version="1.35"
        ),
        runtime_version=ImageVersionFactory(base_image__name="runtime/debian"),
        binary_version=binary,
    )
    response = dev.post(f"/api/v1/deployments/{deployment.pk}/releases/", {}, format="json")
    assert response.status_code == 201, response.json()
    manifest = response.json()["manifest_yaml"]
    pod = yaml.safe_load(manifest)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "binary")
    assert volume["image"]["reference"] == binary.artifact_ref
    assert validate_manifest(manifest, "1.35").valid

    # asking again: the digest still resolves, nothing is pushed
    again = push(dev, binary)
    assert again.pk != job.pk
    assert job_execute(again.pk) == "succeeded"
    again.refresh_from_db()
    assert again.result == {
        "binary_version": binary.pk,
        "artifact_ref": binary.artifact_ref,
        "reused": True,
    }
    assert "nothing to do" in again.log


@pytest.mark.slow
def test_an_aarch64_binary_is_an_arm64_image(artifact_env, dev, orders, elf_files, tmp_path):
    # No cross compiler here: the static x86-64 hello with EM_AARCH64 in its ELF header is an
    # aarch64 binary to everything that reads headers (the upload's analysis, the push).
    arm = tmp_path / "hello-arm"
    data = bytearray(elf_files["hello-static"].read_bytes())
    data[18:20] = EM_AARCH64.to_bytes(2, "little")
    arm.write_bytes(bytes(data))
    binary = upload(dev, arm, arch="arm64")
    assert binary.arch == "aarch64"  # stored in uname -m spelling
    job = push(dev, binary)
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).log[-3000:]
    binary.refresh_from_db()

    # the config blob the pushed manifest names (what a node's platform is matched against)
    raw_config = skopeo_raw(binary.artifact_ref, "--config")
    config = json.loads(raw_config)
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    manifest = json.loads(skopeo_raw(binary.artifact_ref))
    assert manifest["config"]["digest"] == f"sha256:{hashlib.sha256(raw_config).hexdigest()}"
    tag_ref = f"{artifact_env['registry'].host}/binaries/orders:1.0.0-aarch64"
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{tag_ref}"))
    assert binary.artifact_ref.endswith(f"@{inspected['Digest']}")
    assert inspected["Architecture"] == "arm64"
    members, contents, _ = layer_members(binary.artifact_ref, tmp_path / "copy")
    assert [m.name for m in members] == ["hello-arm"]
    assert hashlib.sha256(contents["hello-arm"]).hexdigest() == binary.sha256


@pytest.mark.parametrize("arch", sorted(set(ARCH_ALIASES.values())))
def test_every_stored_arch_has_an_image_architecture(arch):
    """The push job turns each architecture a binary can be stored with into an OCI name."""
    expected = {"x86_64": "amd64", "aarch64": "arm64", "i386": "386", "loongarch64": "loong64"}
    assert oci_architecture(arch) == (None if arch == "noarch" else expected.get(arch, arch))


@pytest.mark.slow
def test_a_ref_that_no_longer_resolves_is_pushed_again(artifact_env, dev, orders, elf_files):
    binary = upload(dev, elf_files["hello"], version="2.0+build.7")
    host = artifact_env["registry"].host
    gone = f"{host}/binaries/orders@sha256:" + "0" * 64
    BinaryVersion.objects.filter(pk=binary.pk).update(artifact_ref=gone)
    job = push(dev, binary)
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).log[-3000:]
    binary.refresh_from_db()
    assert binary.artifact_ref != gone
    assert binary.artifact_ref.startswith(f"{host}/binaries/orders@sha256:")
    assert "no longer resolves" in Job.objects.get(pk=job.pk).log
    tag_ref = f"{host}/binaries/orders:2.0_build.7-x86_64"
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{tag_ref}"))
    assert binary.artifact_ref.endswith(inspected["Digest"])
    audit = AuditEntry.objects.filter(action="binary_version.artifact").get()
    assert audit.before == {"artifact_ref": gone}


@pytest.mark.slow
def test_m3_push_jobs_reference_is_accepted(artifact_env, dev, orders, elf_files):
    binary = upload(dev, elf_files["hello"], version="3.0.0")
    job = push(dev, binary)
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).log[-3000:]
    binary.refresh_from_db()
    ref = binary.artifact_ref
    labels = json.loads(skopeo_raw(ref, "--config"))["config"]["Labels"]
    assert labels[SHA256_LABEL] == binary.sha256
    # The job's own reference passes the upload's checks: another version of the same bytes
    # may name it …
    path = elf_files["hello"]
    with path.open("rb") as fh:
        response = dev.post(
            BINARIES,
            {
                "file": fh,
                "version": "3.0.1",
                "arch": "x86_64",
                "sha256": sha256_of(path),
                "artifact_ref": ref,
            },
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    assert BinaryVersion.objects.get(pk=response.json()["id"]).artifact_ref == ref
    # … and a second push keeps it.
    again = push(dev, binary)
    assert job_execute(again.pk) == "succeeded"
    assert Job.objects.get(pk=again.pk).result == {
        "binary_version": binary.pk,
        "artifact_ref": ref,
        "reused": True,
    }


@pytest.mark.slow
def test_m3_push_job_replaces_a_user_ref_that_fails_the_checks(
    artifact_env, dev, orders, elf_files
):
    """`_existing_artifact` used to keep any reference that resolved in a catalog registry."""
    binary = upload(dev, elf_files["hello"], version="4.0.0")
    registry = artifact_env["registry"]
    foreign = put_image(registry.url, "binaries/orders", "x", labels={SHA256_LABEL: "f" * 64})
    bad = f"{registry.host}/binaries/orders@{foreign}"
    BinaryVersion.objects.filter(pk=binary.pk).update(artifact_ref=bad)  # as an old upload did
    job = push(dev, binary)
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).log[-3000:]
    log = Job.objects.get(pk=job.pk).log
    assert f"artifact_ref {bad} is not kept: its {SHA256_LABEL} label is" in log
    binary.refresh_from_db()
    assert binary.artifact_ref != bad
    assert binary.artifact_ref.startswith(f"{registry.host}/binaries/orders@sha256:")
    labels = json.loads(skopeo_raw(binary.artifact_ref, "--config"))["config"]["Labels"]
    assert labels[SHA256_LABEL] == binary.sha256


@pytest.mark.slow
def test_registry_down_fails_the_job_after_retries(artifact_env, dev, orders, elf_files, settings):
    settings.PORTAL_BUILD_REGISTRY_RETRIES = 1  # each buildah push retries inside, too (~6 s)
    binary = upload(dev, elf_files["hello"])
    job = push(dev, binary)
    with artifact_env["oci"].down():
        state = job_execute(job.pk)
    job.refresh_from_db()
    binary.refresh_from_db()
    assert state == "failed"
    assert "push to 127.0.0.1:" in job.error
    assert "the registry stayed unavailable after 2 attempts" in job.error
    assert "connection refused" in job.error
    assert ": registry unavailable (buildah push " in job.log
    assert "); retry 1 of 1 in 0.1 s" in job.log
    assert binary.artifact_ref == ""
    assert not AuditEntry.objects.filter(action="binary_version.artifact").exists()
    assert "bip-artifact/orders" not in local_images(artifact_env["buildah"])


@pytest.mark.slow
def test_corrupt_storage_pushes_nothing(artifact_env, dev, orders, elf_files, binary_store_dir):
    binary = upload(dev, elf_files["hello"])
    stored = binary_store_dir["root"] / binary.file
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    job = push(dev, binary)
    assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    assert "storage is corrupt; nothing was pushed" in job.error
    BinaryVersion.objects.filter(pk=binary.pk).update(size=binary.size + 10)
    job = push(dev, binary)
    assert job_execute(job.pk) == "failed"
    assert "shorter than its recorded" in Job.objects.get(pk=job.pk).error


def test_no_registry_is_a_clear_failure(settings, dev, orders, elf_files, binary_store_dir):
    settings.JOB_HEARTBEAT_SECONDS = 3600
    binary = upload(dev, elf_files["hello"])
    job = push(dev, binary)
    assert job_execute(job.pk) == "failed"
    assert "No registry is configured" in Job.objects.get(pk=job.pk).error


# --- who may push, which versions -----------------------------------------------------------


def test_one_live_push_per_version(dev, orders):
    binary = BinaryVersionFactory(service=orders)
    first = push(dev, binary)
    second = push(dev, binary)
    assert first.pk == second.pk
    other = push(dev, BinaryVersionFactory(service=orders))
    assert other.pk != first.pk
    assert first.target_id == str(binary.pk) and first.team_id == orders.team_id


def test_wrong_team_and_missing_scope_are_refused(
    token_client, platform_team, service_team, orders, api, make_user
):
    binary = BinaryVersionFactory(service=orders)
    url = f"/api/v1/binaries/{binary.pk}/artifact/"
    other = token_client(platform_team, ["binaries:write"]).post(url)
    assert other.status_code == 403
    assert "only team payments" in other.json()["detail"]
    no_scope = token_client(service_team, ["binaries:read"]).post(url)
    assert no_scope.status_code == 403
    api.force_login(make_user("viewer", service_team, "viewer"))
    viewer = api.post(url)
    assert viewer.status_code == 403
    assert "needs the developer role" in viewer.json()["detail"]
    missing = token_client(service_team, ["binaries:write"]).post(
        "/api/v1/binaries/999999/artifact/"
    )
    assert missing.status_code == 404
    assert not Job.objects.filter(kind="deployments.push_artifact").exists()


@pytest.mark.parametrize("state", ["yanked", "purged"])
def test_yanked_or_purged_is_409(dev, orders, state):
    binary = BinaryVersionFactory(service=orders, state=state)
    response = dev.post(f"/api/v1/binaries/{binary.pk}/artifact/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_active"
    assert f"is {state}; only active versions can be pushed" in response.json()["detail"]
    assert not Job.objects.exists()


def test_yanked_after_queueing_fails_the_job(settings, dev, orders):
    settings.JOB_HEARTBEAT_SECONDS = 3600
    binary = BinaryVersionFactory(service=orders)
    job = push(dev, binary)
    BinaryVersion.objects.filter(pk=binary.pk).update(state="yanked")
    assert job_execute(job.pk) == "failed"
    assert "is yanked; only active versions" in Job.objects.get(pk=job.pk).error


# --- releases need the artifact -------------------------------------------------------------


def test_image_volume_release_without_artifact_says_how_to_push(dev, orders, settings):
    settings.PORTAL_URL = "https://portal.example.com"
    deployment = DeploymentFactory(
        service=orders,
        environment=EnvironmentFactory(
            name="vol", namespace="payments", delivery_strategy="imageVolume", k8s_version="1.35"
        ),
        runtime_version=ImageVersionFactory(base_image__name="runtime/debian"),
    )
    binary = deployment.binary_version
    response = dev.post(f"/api/v1/deployments/{deployment.pk}/releases/", {}, format="json")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert f"push it as an OCI artifact first: POST /api/v1/binaries/{binary.pk}/artifact/" in (
        detail
    )
    assert deployment.releases.count() == 0
    # below 1.35 the renderer's message (image volumes need 1.35) is the useful one
    old = DeploymentFactory(
        service=ServiceFactory(name="billing", team=orders.team),
        environment=EnvironmentFactory(
            name="old", namespace="payments", delivery_strategy="imageVolume", k8s_version="1.33"
        ),
        runtime_version=deployment.runtime_version,
    )
    response = dev.post(f"/api/v1/deployments/{old.pk}/releases/", {}, format="json")
    assert response.status_code == 400
    assert "image volumes need Kubernetes 1.35 or newer" in response.json()["detail"]


def test_other_strategies_do_not_need_an_artifact(dev, orders, settings):
    settings.PORTAL_URL = "https://portal.example.com"
    deployment = DeploymentFactory(
        service=orders,
        environment=EnvironmentFactory(name="fetch", delivery_strategy="initFetch"),
        runtime_version=ImageVersionFactory(base_image__name="runtime/debian"),
    )
    response = dev.post(f"/api/v1/deployments/{deployment.pk}/releases/", {}, format="json")
    assert response.status_code == 201, response.json()


# --- UI -----------------------------------------------------------------------------------------


def test_service_page_button_and_artifact_ref(client, make_user, service_team, orders):
    ref = "127.0.0.1:5000/binaries/orders@sha256:" + "ab" * 32
    pending = BinaryVersionFactory(service=orders, version="1.0.0")
    BinaryVersionFactory(service=orders, version="1.0.1", artifact_ref=ref)
    client.force_login(make_user("dev", service_team, "developer"))
    page = client.get("/services/orders/").content.decode()
    assert page.count("Push as OCI artifact") == 1
    assert f'action="/binaries/{pending.pk}/artifact/"' in page
    assert ref in page
    response = client.post(f"/binaries/{pending.pk}/artifact/")
    job = Job.objects.get(kind="deployments.push_artifact")
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    client.force_login(make_user("viewer", service_team, "viewer"))
    page = client.get("/services/orders/").content.decode()
    assert "Push as OCI artifact" not in page and ref in page
    assert client.post(f"/binaries/{pending.pk}/artifact/").status_code == 403
