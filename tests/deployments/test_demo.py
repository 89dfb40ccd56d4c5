"""The deployments half of the `make run` demo: what the blast radius of the demo CVE lands on.

Real parts: seed_demo, gcc-compiled binaries uploaded through `binary_version_upload`, the
`deployments.demo` job run by the real job runner, real manifests rendered for the releases.
"""

from __future__ import annotations

import shutil

import pytest
from django.core.management import call_command

from deployments import demo
from deployments.models import BinaryVersion, Deployment, Environment, Release, Service
from images.demo import seed_demo
from images.models import BaseImage, ImageVersion
from portal.jobs import job_execute
from portal.models import Job
from tests.images.factories import ImageVersionFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc"),
]


@pytest.fixture
def seeded(binary_store_dir: dict, settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    seed_demo()


def _runtime(
    state: str = "approved", name: str = "runtime/debian", tag: str = "12"
) -> ImageVersion:
    image = BaseImage.objects.get(name=name)
    return ImageVersionFactory(base_image=image, registry=image.registry, tag=tag, state=state)


def test_seed_creates_environments_services_and_real_binaries_once(seeded: None) -> None:
    first = demo.seed_demo_deployments()
    assert (first["environments"], first["services"], first["binaries"]) == (2, 5, 5)
    assert set(Environment.objects.values_list("name", flat=True)) == {"dev", "prod"}
    api = Service.objects.get(name="payments-api")
    assert (api.team.name, api.default_mode) == ("payments", "volume")
    assert Service.objects.get(name="ledger").default_mode == "image"
    binary = BinaryVersion.objects.get(service=api)
    assert (binary.version, binary.file_type, binary.linkage) == ("1.4.2", "elf", "dynamic")
    assert binary.min_glibc  # analysed like any upload
    again = demo.seed_demo_deployments()
    assert (again["environments"], again["services"], again["binaries"]) == (0, 0, 0)
    assert BinaryVersion.objects.count() == 5


def test_seed_without_the_demo_team_does_nothing(binary_store_dir: dict) -> None:
    assert demo.seed_demo_deployments()["services"] == 0
    assert demo.demo_deployments_start() == (None, "skipped (run seed_demo first)")
    assert not Service.objects.exists()


def test_the_job_waits_for_the_runtime_then_deploys_volume_and_image_mode(
    seeded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo.seed_demo_deployments()
    _runtime(state="candidate")  # not deployable: the job must keep waiting for an approved one
    calls = {"n": 0}
    real = demo.demo_runtime_version

    def runtime_appears_on_third_look(which: tuple = demo.DEMO_RUNTIME) -> ImageVersion | None:
        if which == demo.DEMO_RUNTIME:
            calls["n"] += 1
            if calls["n"] == 3:
                _runtime()
        return real(which)

    # Debian 11 is there from the start; 12-p1 (the rebase demo) is published already.
    _runtime(name="runtime/debian-11", tag="11")
    _runtime(state="superseded", tag="12-p0")
    rebased = _runtime(state="candidate", tag="12-p1")

    monkeypatch.setattr(demo, "demo_runtime_version", runtime_appears_on_third_look)
    monkeypatch.setattr(demo, "_POLL_SECONDS", 0)
    job, what = demo.demo_deployments_start()
    assert what == "started" and job.kind == "deployments.demo"
    assert demo.demo_deployments_start()[0].pk == job.pk  # idempotent while it runs
    ImageVersion.objects.filter(pk=rebased.pk).update(state="approved")
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert "waiting for runtime/debian:12" in job.log
    deployed = {
        (d.service.name, d.environment.name, d.mode, d.runtime_version.state)
        for d in Deployment.objects.select_related("service", "environment", "runtime_version")
    }
    assert deployed == {
        ("payments-api", "dev", "volume", "approved"),
        ("payments-api", "prod", "volume", "approved"),
        ("ledger", "prod", "image", "approved"),
        ("invoices", "dev", "volume", "approved"),
        ("invoices", "prod", "volume", "approved"),
        ("fx-rates", "prod", "volume", "approved"),
        ("statements", "dev", "volume", "approved"),
    }
    legacy = set(
        Deployment.objects.filter(
            runtime_version__base_image__name="runtime/debian-11"
        ).values_list("service__name", flat=True)
    )
    assert legacy == {"invoices", "fx-rates", "statements"}
    assert Release.objects.count() == 7  # real manifests rendered for each
    assert demo.demo_deployments_start() == (None, "already deployed")


def test_the_job_gives_up_with_a_reason(seeded: None, monkeypatch: pytest.MonkeyPatch) -> None:
    demo.seed_demo_deployments()
    monkeypatch.setattr(demo, "DEMO_WAIT_SECONDS", 0)
    job, _ = demo.demo_deployments_start()
    assert job_execute(job.pk) == "failed"
    job.refresh_from_db()
    assert "runtime/debian:12 was not published" in job.error
    assert not Deployment.objects.exists()


def test_the_command_reports_what_it_did(seeded: None, capsys: pytest.CaptureFixture) -> None:
    call_command("start_demo_deployments")
    out = capsys.readouterr().out
    assert "2 new environments, 5 new services, 5 new binaries" in out
    assert "Demo deployments: started (job #" in out


def test_a_runtime_blocked_by_a_real_advisory_is_left_to_a_reviewer(seeded: None, settings) -> None:
    from images.demo import demo_versions_publish
    from images.models import Waiver
    from tests.images.scandata import advisory, finding, scanned

    settings.PORTAL_SCAN_REQUIRED = True
    candidate = _runtime(state="candidate")
    finding(scanned(candidate), advisory("CVE-2026-0001"))  # not one of the demo's own
    assert demo_versions_publish() == []
    candidate.refresh_from_db()
    assert candidate.state == "candidate" and not Waiver.objects.exists()
