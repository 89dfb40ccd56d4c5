"""The rebase and migration half of the `make run` demo (issue 10).

Real parts: seed_demo, gcc-compiled binaries read by the upload's ELF reader, the demo job run
by the real job runner, a real registry for the publish (it moves the public tag), the real
waiver and publish services.
"""

from __future__ import annotations

import platform
import shutil

import pytest
import yaml

from deployments import demo
from deployments.models import BinaryVersion, Deployment
from images import demo as images_demo
from images.models import BaseImage, ImageRequest, ImageVersion, Waiver
from portal.jobs import job_execute
from portal.models import Job
from tests.fixtures.registry import put_image
from tests.images import scan_data
from tests.images.factories import ImageVersionFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc"),
]


@pytest.fixture
def seeded(binary_store_dir: dict) -> None:
    images_demo.seed_demo()


def test_debian_11_is_in_the_catalog_end_of_life_with_debian_12_as_its_replacement(
    seeded: None,
) -> None:
    image = BaseImage.objects.select_related("replacement").get(name="runtime/debian-11")
    assert (image.kind, image.os_family, image.os_version) == ("runtime", "debian", "11")
    assert image.status == "deprecated" and str(image.eol_date) == "2026-08-31"
    assert image.replacement.name == "runtime/debian"
    build = next(b for b in images_demo.DEMO_BUILDS if b.image == "runtime/debian-11")
    recipe = yaml.safe_load(build.recipe)
    assert (build.tag, recipe["suite"], recipe["variant"]) == ("11", "bullseye", "minbase")
    started = {ref: what for ref, _, what in images_demo.demo_builds_start()}
    assert started["runtime/debian-11:11"] == "started"


def test_the_debian_11_services_have_the_binaries_a_migration_judges(seeded: None) -> None:
    demo.seed_demo_deployments()
    binaries = {
        b.service.name: b
        for b in BinaryVersion.objects.filter(
            service__name__in=["invoices", "fx-rates", "statements"]
        ).select_related("service")
    }
    assert binaries["invoices"].linkage == "dynamic"
    assert "libssl.so.1.1" not in binaries["invoices"].needed
    assert "libssl.so.1.1" in binaries["fx-rates"].needed  # Debian 12 has libssl.so.3 only
    assert binaries["statements"].linkage == "static"
    if platform.machine() == "x86_64":  # built for Debian 11: nothing newer than glibc 2.31
        assert binaries["invoices"].min_glibc == binaries["fx-rates"].min_glibc == "2.2.5"
    payments = BinaryVersion.objects.get(service__name="payments-api")
    assert payments.min_glibc == "2.34"  # built on this Debian 12 host, for runtime/debian:12


def test_the_job_deploys_on_debian_11_then_requests_the_rebase_version(
    seeded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo.seed_demo_deployments()
    debian = BaseImage.objects.get(name="runtime/debian")
    legacy = BaseImage.objects.get(name="runtime/debian-11")
    ImageVersionFactory(base_image=debian, registry=debian.registry, tag="12")
    ImageVersionFactory(base_image=legacy, registry=legacy.registry, tag="11")
    monkeypatch.setattr(demo, "_POLL_SECONDS", 0)
    monkeypatch.setattr(demo, "DEMO_WAIT_SECONDS", 1)
    job, what = demo.demo_deployments_start()
    assert what == "started"
    # 12-p1 is requested and built by a worker, which does not run here: the job waits for
    # it and gives up with a reason after its deadline, with everything else deployed.
    assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    assert "runtime/debian:12-p1 was not published" in job.error
    on_11 = set(
        Deployment.objects.filter(runtime_version__base_image=legacy).values_list(
            "service__name", "environment__name"
        )
    )
    assert on_11 == {("invoices", "dev"), ("invoices", "prod"), ("fx-rates", "prod"),
                     ("statements", "dev")}  # fmt: skip
    request = ImageRequest.objects.get(name="runtime/debian", tag="12-p1")
    assert request.state == "approved" and "netbase" in yaml.safe_load(request.recipe)["packages"]
    assert "rebase demo: runtime/debian:12-p1 request #" in job.log
    assert Job.objects.filter(kind="images.build", params={"request_id": request.pk}).exists()
    assert demo.demo_deployments_start()[1] == "started"  # 12-p1 still to come: again


def _demo_blocked(registry_url: str, tag: str, advisory_id: str) -> ImageVersion:
    """A scanned candidate of runtime/debian:`tag` (really in the registry) with a Critical
    fixable zlib finding of `advisory_id`."""
    image = BaseImage.objects.get(name="runtime/debian")
    digest = put_image(registry_url, "runtime/debian", f"{tag}-candidate-1")
    version = ImageVersionFactory(
        base_image=image, registry=image.registry, tag=tag, digest=digest, state="candidate"
    )
    sbom = scan_data.sbom(digest)
    ImageVersion.objects.filter(pk=version.pk).update(sbom=sbom, scan_state="scanned")
    from images.models import Advisory

    advisory = Advisory.objects.filter(osv_id=advisory_id).first() or scan_data.advisory(
        advisory_id, severity="critical"
    )
    scan_data.finding(sbom, scan_data.package("zlib1g", source="zlib"), advisory)
    return ImageVersion.objects.get(pk=version.pk)


def test_demo_versions_blocked_only_by_demo_advisories_are_waived_and_published(
    seeded: None, scratch_registry, settings
) -> None:
    settings.PORTAL_SCAN_REQUIRED = True
    registry = BaseImage.objects.get(name="runtime/debian").registry
    registry.url, registry.tls_verify = scratch_registry.url, False
    registry.save()
    old = ImageVersionFactory(
        base_image=registry.base_images.get(name="runtime/debian"), registry=registry, tag="12-0"
    )
    twelve = _demo_blocked(scratch_registry.url, "12", "DSA-9901-1")
    curl = _demo_blocked(scratch_registry.url, "12-curl", "DSA-9901-1")
    real = _demo_blocked(scratch_registry.url, "12-p1", "CVE-2026-0001")  # not a demo record

    assert images_demo.demo_versions_publish() == [
        "runtime/debian:12 published (demo advisories waived for this version)"
    ]
    assert ImageVersion.objects.get(pk=twelve.pk).state == "approved"
    assert ImageVersion.objects.get(pk=old.pk).state == "superseded"  # the rebase's trigger
    assert ImageVersion.objects.get(pk=curl.pk).state == "candidate"  # the gate demo stays
    assert ImageVersion.objects.get(pk=real.pk).state == "candidate"  # a real one is not waived
    waiver = Waiver.objects.get()
    assert (waiver.scope, waiver.image_version_id, waiver.state) == (
        "image_version",
        twelve.pk,
        "approved",
    )
    assert "FICTIONAL" in waiver.action_statement
    assert images_demo.demo_versions_publish() == []  # idempotent


def test_the_migration_demo_drafts_one_plan_with_the_binaries_real_verdicts(
    seeded: None,
) -> None:
    """The demo binaries' ELF facts against Debian 12's libraries (glibc 2.36, no
    libssl.so.1.1): invoices passes, statements is static (passes), fx-rates is blocked."""
    from deployments.models import Plan
    from tests.deployments.plan_world import GLIBC_236, with_abi

    demo.seed_demo_deployments()
    debian = BaseImage.objects.get(name="runtime/debian")
    legacy = BaseImage.objects.get(name="runtime/debian-11")
    assert demo.demo_migration_plan_draft() == ""  # nothing deployed on 11 yet
    target = with_abi(
        ImageVersionFactory(base_image=debian, registry=debian.registry, tag="12"),
        versions=[*GLIBC_236, "GLIBC_2.2.5"],  # x86_64's first glibc version is 2.2.5
    )
    old = ImageVersionFactory(base_image=legacy, registry=legacy.registry, tag="11")
    demo.demo_deployments_create(old, demo.DEMO_LEGACY_RUNTIME)
    told = demo.demo_migration_plan_draft()
    plan = Plan.objects.get(kind="migration")
    assert (plan.state, plan.to_version_id) == ("draft", target.pk)
    assert told.startswith(f"migration demo: draft plan #{plan.pk} moves runtime/debian-11")
    verdicts = {
        (i.deployment.service.name, i.deployment.environment.name): (i.verdict, i.state)
        for i in plan.items.select_related("deployment__service", "deployment__environment")
    }
    assert verdicts == {
        ("invoices", "dev"): ("compatible", "pending"),
        ("invoices", "prod"): ("compatible", "pending"),
        ("statements", "dev"): ("compatible", "pending"),
        ("fx-rates", "prod"): ("incompatible", "blocked"),
    }
    blocked = plan.items.get(verdict="incompatible")
    assert any("libssl.so.1.1" in f["title"] for f in blocked.findings)
    assert demo.demo_migration_plan_draft() == ""  # one plan only
