"""An image-mode deployment whose app image a team's CI built: the portal reads the image's
`org.opencontainers.image.base.digest` (manifest annotation, else config label) from the real
registry, and a rebase finds the deployment by that digest even when its declared runtime
version is another one."""

from __future__ import annotations

import pytest

from deployments.models import Deployment
from deployments.services import deployment_create, rebase_plan_create
from images.models import Registry
from portal.actors import Actor
from portal.choices import Role
from portal.jobs import job_execute
from portal.models import Job
from tests.deployments.factories import BinaryVersionFactory, EnvironmentFactory, ServiceFactory
from tests.fixtures.registry import put_image
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db
KEY = "org.opencontainers.image.base.digest"
ADMIN = Actor.system_actor("test-admin")


@pytest.fixture
def world(scratch_registry, service_team, make_user, settings):
    settings.JOB_HEARTBEAT_SECONDS = 3600
    registry = Registry.objects.create(name="scratch", url=scratch_registry.url, tls_verify=False)
    image = BaseImageFactory(name="runtime/debian", registry=registry)
    old, declared, new = (
        ImageVersionFactory(
            base_image=image,
            registry=registry,
            tag=tag,
            digest=put_image(registry.url, "runtime/debian", tag),
            state="approved",
        )
        for tag in ("12", "12-p1", "12-p2")
    )
    developer = make_user("dev", service_team, Role.DEVELOPER)
    return {
        "registry": registry,
        "old": old,
        "declared": declared,
        "new": new,
        "actor": Actor(user=developer),
        "team": service_team,
    }


def deploy(world, name: str, app_image: str) -> Deployment:
    service = ServiceFactory(name=name, team=world["team"])
    return deployment_create(
        actor=world["actor"],
        service=service,
        environment=EnvironmentFactory(name=f"env-{name}"),
        runtime_version=world["declared"],
        binary_version=BinaryVersionFactory(service=service),
        mode="image",
        app_image=app_image,
    )


def read_base(deployment: Deployment) -> Job:
    job = Job.objects.get(kind="deployments.app_image_base", target_id=str(deployment.pk))
    job_execute(job.pk)
    deployment.refresh_from_db()
    return Job.objects.get(pk=job.pk)


@pytest.mark.parametrize("where", ["annotations", "labels"])
def test_the_base_digest_is_read_from_the_registry(world, where):
    host = world["registry"].host
    digest = put_image(world["registry"].url, "apps/ci", "1", **{where: {KEY: world["old"].digest}})
    deployment = deploy(world, "ci-built", f"{host}/apps/ci@{digest}")
    job = read_base(deployment)
    assert job.state == "succeeded" and job.result == {"base_digest": world["old"].digest}
    assert deployment.app_image_base_digest == world["old"].digest

    # the rebase of the old version finds it, although it declares 12-p1
    plan = rebase_plan_create(
        actor=ADMIN, from_version_id=world["old"].pk, to_version_id=world["new"].pk
    )
    assert list(plan.items.values_list("deployment_id", flat=True)) == [deployment.pk]
    # and the rebase of what it declares passes it by: it does not run 12-p1's digest
    with pytest.raises(Exception, match="No deployment runs"):
        rebase_plan_create(
            actor=ADMIN, from_version_id=world["declared"].pk, to_version_id=world["new"].pk
        )


def test_an_image_naming_no_base_or_a_bad_one_records_nothing(world):
    host = world["registry"].host
    plain = put_image(world["registry"].url, "apps/plain", "1")
    bogus = put_image(world["registry"].url, "apps/bogus", "1", labels={KEY: "latest"})
    for name, digest in (("plain", plain), ("bogus", bogus)):
        deployment = deploy(world, name, f"{host}/apps/{name}@{digest}")
        job = read_base(deployment)
        assert job.state == "succeeded" and job.result == {"base_digest": ""}
        assert deployment.app_image_base_digest == ""
    with pytest.raises(Exception, match="No deployment runs"):
        rebase_plan_create(
            actor=ADMIN, from_version_id=world["old"].pk, to_version_id=world["new"].pk
        )


def test_an_unknown_registry_or_a_missing_image_fails_the_job_clearly(world):
    deployment = deploy(world, "elsewhere", "registry.example.com/apps/x@sha256:" + "a" * 64)
    job = read_base(deployment)
    assert job.state == "failed" and "No registry of the catalog serves" in job.error
    host = world["registry"].host
    deployment = deploy(world, "gone", f"{host}/apps/gone@sha256:" + "b" * 64)
    job = read_base(deployment)
    assert job.state == "failed" and "Reading the base of" in job.error
    assert deployment.app_image_base_digest == ""


def test_volume_mode_and_no_app_image_queue_nothing(world):
    service = ServiceFactory(name="vol", team=world["team"])
    deployment_create(
        actor=world["actor"],
        service=service,
        environment=EnvironmentFactory(name="env-vol"),
        runtime_version=world["declared"],
        binary_version=BinaryVersionFactory(service=service),
        mode="volume",
    )
    assert not Job.objects.filter(kind="deployments.app_image_base").exists()
