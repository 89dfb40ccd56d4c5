"""App-image builds: an image-mode deployment rebuilt by buildah on a patched runtime version,
pushed to `apps/<service>`, the new base verified in the pushed image (skopeo is the oracle)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from rest_framework.exceptions import PermissionDenied

from deployments.buildjobs import verify_base
from deployments.models import BinaryVersion, Deployment, Service
from deployments.services.app_images import app_image_build_start, app_image_tag
from images.builder import build_dockerfile, oci_labels, push_image
from images.builder.container import Mount, container_run, working_container
from portal.actors import Actor
from portal.choices import Role
from portal.jobs import JobFailure, job_execute
from portal.models import Job
from tests.deployments import build_support
from tests.deployments.factories import BinaryVersionFactory, DeploymentFactory, EnvironmentFactory
from tests.fixtures.registry import BASE_REPOSITORY
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db
build_env = build_support.build_env  # the fixture


def skopeo_json(reference: str, *flags: str) -> dict:
    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *flags, f"docker://{reference}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def patched_runtime(debian_base_image, buildah_config, oci_registry, tmp_path_factory):
    """`runtime/debian:12-p1`: the base plus one layer (a patch), `(reference, digest)`."""
    base_ref, base_digest = debian_base_image
    pinned = f"{base_ref.rsplit(':', 1)[0]}@{base_digest}"
    context = tmp_path_factory.mktemp("patch-context")
    (context / "patch.txt").write_text("patched\n")
    lines: list[str] = []
    tag = f"localhost/{BASE_REPOSITORY}:12-p1"
    build_dockerfile(
        f"FROM {pinned}\nCOPY patch.txt /etc/bip-patch.txt\n",
        context_dir=str(context),
        tag=tag,
        labels=oci_labels(
            title=BASE_REPOSITORY,
            version="12-p1",
            source_request="tests",
            recipe_text="patch",
            created=datetime.now(UTC),
        ),
        build_args={},
        config=buildah_config,
        log=lines.append,
    )
    reference = f"{oci_registry.host}/{BASE_REPOSITORY}:12-p1"
    return reference, push_image(tag, reference, config=buildah_config, log=lines.append)


@pytest.fixture
def orders(service_team) -> Service:
    return Service.objects.create(name="orders", team=service_team, language="c")


def upload(client, path: Path) -> BinaryVersion:
    with path.open("rb") as fh:
        response = client.post(
            "/api/v1/services/orders/binaries/",
            {
                "file": fh,
                "version": "2.1.0",
                "arch": "x86_64",
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            },
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    return BinaryVersion.objects.get(pk=response.json()["id"])


@pytest.mark.slow
def test_image_mode_deployment_rebuilt_on_a_patched_runtime(
    build_env,
    patched_runtime,
    orders,
    token_client,
    service_team,
    make_user,
    elf_files,
    tmp_path,
    platform_team,
):
    dev = token_client(service_team, ["binaries:read", "binaries:write"])
    binary = upload(dev, elf_files["hello-static"])
    patched = build_support.catalog_version(
        build_env["registry"],
        platform_team,
        BASE_REPOSITORY,
        "runtime",
        "12-p1",
        patched_runtime[1],
    )
    deployment = DeploymentFactory(
        service=orders,
        environment=EnvironmentFactory(name="prod", namespace="payments"),
        mode="image",
        runtime_version=build_env["runtime"],
        binary_version=binary,
        args=["-m", "release"],
    )
    developer = make_user("dave", service_team, Role.DEVELOPER)
    job = app_image_build_start(
        deployment_id=deployment.pk, runtime_version_id=patched.pk, actor=Actor(user=developer)
    )
    assert (job.kind, job.queue) == ("deployments.app_image_build", "builds")
    # asked again while queued: the same job
    same = app_image_build_start(
        deployment_id=deployment.pk, runtime_version_id=patched.pk, actor=Actor(user=developer)
    )
    assert same.pk == job.pk
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).log[-4000:]
    job.refresh_from_db()
    host = build_env["registry"].host
    tag = app_image_tag("2.1.0", patched.digest)
    assert tag == f"2.1.0-{patched.digest[7:19]}"

    # the tag and the result name the same digest, the one the registry serves
    inspected = skopeo_json(f"{host}/apps/orders:{tag}")
    app_image = f"{host}/apps/orders@{inspected['Digest']}"
    assert job.result["app_image"] == app_image
    assert job.result["base_digest"] == patched.digest

    # the new base digest is in the pushed image: its first layers are exactly the patched
    # runtime's (uncompressed diff_ids and the manifests' layer digests), then one more
    runtime_config = skopeo_json(patched.pull_ref, "--config")
    app_config = skopeo_json(app_image, "--config")
    base_ids = runtime_config["rootfs"]["diff_ids"]
    app_ids = app_config["rootfs"]["diff_ids"]
    assert len(base_ids) == 2  # bookworm + the patch
    assert app_ids[: len(base_ids)] == base_ids
    assert len(app_ids) == len(base_ids) + 1
    old_ids = skopeo_json(build_env["runtime"].pull_ref, "--config")["rootfs"]["diff_ids"]
    assert base_ids[:1] == old_ids and base_ids[1] not in old_ids  # the patch is a new layer
    runtime_layers = skopeo_json(patched.pull_ref)["Layers"]
    assert skopeo_json(app_image)["Layers"][: len(runtime_layers)] == runtime_layers
    labels = app_config["config"]["Labels"]
    assert labels["org.opencontainers.image.base.digest"] == patched.digest
    assert labels["org.opencontainers.image.title"] == "apps/orders"
    assert app_config["config"]["User"] == "65532:65532"
    assert app_config["config"]["Cmd"] == ["/opt/app/hello-static", "-m", "release"]

    # the image runs the binary, on the patched base
    lines: list[str] = []
    config = build_env["buildah"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with working_container(app_image, config=config, log=lines.append) as container:
        result = container_run(
            container,
            ["/bin/sh", "-c", "cat /etc/bip-patch.txt; /opt/app/hello-static"],
            mounts=[Mount(str(empty), "/mnt", read_only=True)],
            workdir="/",
            config=config,
            log=lines.append,
        )
    assert "patched" in result.output_tail and "hello" in result.output_tail, lines

    # the verification refuses a pushed image that does not sit on the runtime it names:
    # on the old base the layers are a prefix, but the base-digest label says otherwise
    registry = build_env["registry"]
    with pytest.raises(JobFailure, match="base.digest"):
        verify_base(
            registry=registry,
            repository="apps/orders",
            digest=inspected["Digest"],
            runtime=build_env["runtime"],
        )
    # and on an unrelated image the layers differ
    with pytest.raises(JobFailure, match="does not sit on"):
        verify_base(
            registry=registry,
            repository="apps/orders",
            digest=inspected["Digest"],
            runtime=build_env["gcc"],
        )
    # nothing about the deployment was changed by the build (the release that follows does)
    deployment.refresh_from_db()
    assert deployment.app_image == "" and deployment.runtime_version == build_env["runtime"]


# --- the start's checks (no build) ---------------------------------------------------------


@pytest.fixture
def image_deployment(orders, platform_team):
    return DeploymentFactory(
        service=orders,
        mode="image",
        binary_version=BinaryVersionFactory(service=orders),
        runtime_version=ImageVersionFactory(base_image=BaseImageFactory(name="runtime/debian")),
    )


def test_start_permissions(image_deployment, make_user, service_team, admin_user):
    runtime = ImageVersionFactory(base_image=image_deployment.runtime_version.base_image, tag="13")
    viewer = make_user("vic", service_team, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        app_image_build_start(
            deployment_id=image_deployment.pk,
            runtime_version_id=runtime.pk,
            actor=Actor(user=viewer),
        )
    outsider = make_user("olga")
    with pytest.raises(PermissionDenied):
        app_image_build_start(
            deployment_id=image_deployment.pk,
            runtime_version_id=runtime.pk,
            actor=Actor(user=outsider),
        )
    job = app_image_build_start(
        deployment_id=image_deployment.pk,
        runtime_version_id=runtime.pk,
        actor=Actor(user=admin_user),
    )
    assert job.params == {"deployment_id": image_deployment.pk, "runtime_version_id": runtime.pk}
    assert job.team == service_team
    system = app_image_build_start(
        deployment_id=image_deployment.pk,
        runtime_version_id=runtime.pk,
        actor=Actor.system_actor("plans"),
        plan_item_id=7,
    )
    assert system.pk != job.pk and system.params["plan_item_id"] == 7


def test_start_refuses_bad_targets(image_deployment, admin_user):
    actor = Actor(user=admin_user)
    build = ImageVersionFactory(base_image=BaseImageFactory(name="build/gcc", kind="build"))
    revoked = ImageVersionFactory(
        base_image=image_deployment.runtime_version.base_image, tag="14", state="revoked"
    )
    for runtime_id, words in (
        (build.pk, "not a runtime"),
        (revoked.pk, "is revoked"),
        (999999, "No image version"),
    ):
        with pytest.raises(ValidationError, match=words):
            app_image_build_start(
                deployment_id=image_deployment.pk, runtime_version_id=runtime_id, actor=actor
            )
    with pytest.raises(ValidationError, match="No deployment"):
        app_image_build_start(deployment_id=999999, runtime_version_id=revoked.pk, actor=actor)
    Deployment.objects.filter(pk=image_deployment.pk).update(binary_version=None)
    with pytest.raises(ValidationError, match="has no binary"):
        app_image_build_start(
            deployment_id=image_deployment.pk,
            runtime_version_id=image_deployment.runtime_version.pk,
            actor=actor,
        )
    assert Job.objects.filter(kind="deployments.app_image_build").count() == 0


def test_app_image_tag_is_a_valid_oci_tag():
    digest = "sha256:" + "ab" * 32
    assert app_image_tag("1.0.0+build.5", digest) == "1.0.0_build.5-abababababab"
    assert app_image_tag("-x", digest).startswith("v")
    assert len(app_image_tag("9" * 200, digest)) <= 128
