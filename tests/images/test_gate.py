"""The publish gate: threshold, fixable vs unfixed, waivers, expiry and new advisories without
a rescan, unscanned versions, the publish service/API/UI refusing, and apply_gate moving
`scanning` requests on. Findings are made with the ORM (tests/images/scandata.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from images.models import ImageRequest, ImageRequestEvent, ImageVersion, Waiver
from images.policy import PolicyError
from images.policy.gate import load_gate_policy
from images.services import (
    GateBlocked,
    image_version_apply_gate,
    image_version_gate,
    image_version_publish,
    waiver_approve,
    waiver_request,
)
from portal.actors import Actor
from portal.choices import Role
from tests.fixtures.registry import put_image
from tests.images.factories import BaseImageFactory, ImageVersionFactory, RegistryFactory
from tests.images.scandata import advisory, finding, scanned
from tests.images.test_builds import build_env  # noqa: F401 - the real build's fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _scan_required(settings):
    settings.PORTAL_SCAN_REQUIRED = True
    settings.PORTAL_GATE_POLICY_FILE = ""
    settings.PORTAL_AUTO_PUBLISH = False


@pytest.fixture
def world(make_user, service_team, platform_team, admin_user):
    image = BaseImageFactory(name="runtime/gated", owner_team=service_team)
    version = ImageVersionFactory(base_image=image, tag="12-1", state="candidate")
    return {
        "image": image,
        "version": version,
        "dev": Actor(user=make_user("dev", service_team, Role.DEVELOPER)),
        "admin": Actor(user=admin_user),
    }


def policy_file(tmp_path, settings, text):
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    settings.PORTAL_GATE_POLICY_FILE = str(path)


def waive(world, ref, **overrides):
    body = {
        "actor": world["dev"],
        "advisory_ref": ref,
        "scope": "image_version",
        "image_version_id": world["version"].pk,
        "status": "not_affected",
        "justification": "vulnerable_code_not_present",
        "expires_at": timezone.now() + dt.timedelta(days=10),
    }
    body.update(overrides)
    waiver = waiver_request(**body)
    return waiver_approve(waiver_id=waiver.pk, actor=world["admin"])


def test_unscanned_versions_are_blocked_while_scans_are_required(world, settings):
    result = image_version_gate(world["version"])
    assert result.verdict == "unscanned" and not result.clean
    assert "Not scanned yet" in result.reason
    ImageVersion.objects.filter(pk=world["version"].pk).update(
        scan_state="failed", scan_error="syft exited 1"
    )
    world["version"].refresh_from_db()
    assert "syft exited 1" in image_version_gate(world["version"]).reason
    settings.PORTAL_SCAN_REQUIRED = False
    assert image_version_gate(world["version"]).clean


def test_default_threshold_is_critical_with_a_fix(world):
    sbom = scanned(world["version"])
    finding(sbom, advisory("CVE-2026-0001", "high"))  # high: below the threshold
    finding(sbom, advisory("CVE-2026-0002", "critical"), package="zlib1g", source="zlib",
            fix_state="not_fixed")  # fmt: skip
    finding(sbom, advisory("CVE-2026-0003", "unknown"), package="perl-base", source="perl")
    result = image_version_gate(world["version"])
    assert result.clean, result.reason
    assert "3 open" in result.reason
    blocker = finding(sbom, advisory("CVE-2026-0004", "critical"), package="libssl3",
                      source="openssl", installed="3.0.11-1", fixed="3.0.13-1")  # fmt: skip
    result = image_version_gate(world["version"])
    assert result.verdict == "blocked"
    assert [b.finding_id for b in result.blocking] == [blocker.pk]
    body = result.to_dict()["blocking"][0]
    assert body["package"] == "libssl3" and body["installed_version"] == "3.0.11-1"
    assert body["fixed_version"] == "3.0.13-1" and body["advisory"] == "CVE-2026-0004"
    assert body["severity"] == "critical"
    assert body["waive"]["url"] == (
        f"/waivers/new/?advisory=CVE-2026-0004&image_version={world['version'].pk}&package=libssl3"
    )
    assert body["waive"]["api"]["url"] == "/api/v1/waivers/"
    assert body["waive"]["api"]["body"]["scope"] == "image_version"


def test_resolved_findings_do_not_block(world):
    sbom = scanned(world["version"])
    found = finding(sbom, advisory("CVE-2026-0005", "critical"))
    assert not image_version_gate(world["version"]).clean
    type(found).objects.filter(pk=found.pk).update(
        resolved_at=timezone.now(), resolution="fixed_in_data"
    )
    assert image_version_gate(world["version"]).clean


def test_policy_file_sets_threshold_and_block_unfixed(world, tmp_path, settings):
    sbom = scanned(world["version"])
    finding(sbom, advisory("CVE-2026-0011", "high"))
    finding(sbom, advisory("CVE-2026-0012", "critical"), package="zlib1g", source="zlib",
            fix_state="not_fixed")  # fmt: skip
    finding(sbom, advisory("CVE-2026-0013", "critical"), package="bash", source="bash",
            fix_state="not_affected")  # fmt: skip
    assert image_version_gate(world["version"]).clean
    policy_file(tmp_path, settings, "threshold: high\n")
    assert [b.advisory for b in image_version_gate(world["version"]).blocking] == ["CVE-2026-0011"]
    policy_file(tmp_path, settings, "gate:\n  block_unfixed: true\n")
    result = image_version_gate(world["version"])
    assert [b.advisory for b in result.blocking] == ["CVE-2026-0012"]  # not_affected never
    assert result.policy.threshold == "critical" and result.policy.block_unfixed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("threshold: severe\n", "threshold 'severe'"),
        ("block_unfixed: maybe\n", "block_unfixed must be true or false"),
        ("fail_on: all\n", "unknown key(s) fail_on"),
        ("- a list\n", "must be a mapping"),
        ("threshold: [\n", "not valid YAML"),
    ],
)
def test_bad_policy_files_are_refused_and_the_gate_falls_back(world, tmp_path, settings, text,
                                                              message):  # fmt: skip
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_gate_policy(path)
    settings.PORTAL_GATE_POLICY_FILE = str(path)
    sbom = scanned(world["version"])
    finding(sbom, advisory("CVE-2026-0021", "critical"))
    assert image_version_gate(world["version"]).policy.threshold == "critical"


def test_missing_policy_file_is_a_clear_error(tmp_path):
    with pytest.raises(PolicyError, match="Cannot read the gate policy"):
        load_gate_policy(tmp_path / "nope.yaml")


def test_a_waiver_lifts_the_block_and_its_expiry_restores_it(world):
    sbom = scanned(world["version"])
    dsa = advisory("DSA-6001-1", "critical", aliases=("CVE-2026-0031",))
    found = finding(sbom, dsa)
    assert not image_version_gate(world["version"]).clean
    waiver = waive(world, "CVE-2026-0031", package_name="glibc")  # the alias, by source name
    result = image_version_gate(world["version"])
    assert result.clean and result.waived == {found.pk: waiver.pk}
    # expiry by date: no rescan, no job, the next evaluation blocks again
    Waiver.objects.filter(pk=waiver.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert not image_version_gate(world["version"]).clean


def test_waivers_of_the_base_image_and_owner_team_count(world, service_team):
    sbom = scanned(world["version"])
    finding(sbom, advisory("CVE-2026-0041", "critical"))
    waive(world, "CVE-2026-0041", scope="base_image", image_version_id=None,
          base_image_id=world["image"].pk)  # fmt: skip
    assert image_version_gate(world["version"]).clean
    finding(sbom, advisory("CVE-2026-0042", "critical"), package="zlib1g", source="zlib")
    assert not image_version_gate(world["version"]).clean
    waive(world, "CVE-2026-0042", scope="team", image_version_id=None, team_id=service_team.pk)
    assert image_version_gate(world["version"]).clean


def test_publish_refuses_a_blocked_version_and_a_new_advisory_blocks_without_rescan(
    world, scratch_registry
):
    registry = RegistryFactory(name="scratch", url=scratch_registry.url, tls_verify=False)
    image = BaseImageFactory(name="runtime/debian", owner_team=world["image"].owner_team,
                             registry=registry)  # fmt: skip
    digest = put_image(scratch_registry.url, "runtime/debian", "12-7-candidate-3")
    version = ImageVersionFactory(base_image=image, registry=registry, tag="12-7", digest=digest,
                                  state="candidate")  # fmt: skip
    sbom = scanned(version)
    finding(sbom, advisory("CVE-2026-0051", "high"))
    # a new advisory arrives after the scan (the matcher adds its finding): blocked, no rescan
    finding(sbom, advisory("CVE-2026-0052", "critical"), package="zlib1g", source="zlib")
    with pytest.raises(GateBlocked) as exc:
        image_version_publish(version=version, actor=world["admin"])
    assert "CVE-2026-0052" in str(exc.value.detail) and exc.value.get_codes() == "gate_blocked"
    version.refresh_from_db()
    assert version.state == "candidate"
    world["version"] = version
    waive(world, "CVE-2026-0052")
    published = image_version_publish(version=version, actor=world["admin"])
    assert published.state == "approved"


def make_scanning_request(world, version, service_team):
    return ImageRequest.objects.create(
        name=version.base_image.name, tag=version.tag, kind="runtime", os_family="debian",
        os_version="12", recipe_kind="dockerfile", recipe="FROM scratch\n",
        justification="test", team=service_team, requested_by=world["dev"].user,
        state="scanning", image_version=version, base_image=version.base_image,
    )  # fmt: skip


def test_apply_gate_records_what_blocks_and_what_is_clean(world, service_team):
    request = make_scanning_request(world, world["version"], service_team)
    sbom = scanned(world["version"])
    finding(sbom, advisory("CVE-2026-0061", "critical"), package="libssl3", source="openssl")
    body = image_version_apply_gate(version_id=world["version"].pk, actor=Actor.system_actor())
    assert body["verdict"] == "blocked" and body["published"] is False
    assert body["requests"] == [request.pk]
    event = ImageRequestEvent.objects.filter(request=request).latest("id")
    assert "blocks this candidate" in event.text and "CVE-2026-0061" in event.text
    assert "libssl3" in event.text and "/api/v1/waivers/" in event.text
    waive(world, "CVE-2026-0061")
    body = image_version_apply_gate(version_id=world["version"].pk, actor=Actor.system_actor())
    assert body["verdict"] == "clean" and body["published"] is False  # auto-publish is off
    event = ImageRequestEvent.objects.filter(request=request).latest("id")
    assert event.text.startswith("Scan clean") and "reviewer" in event.text
    assert ImageRequest.objects.get(pk=request.pk).state == "scanning"


def test_apply_gate_publishes_a_clean_candidate_when_auto_publish_is_on(
    world, service_team, scratch_registry, settings
):
    settings.PORTAL_AUTO_PUBLISH = True
    registry = RegistryFactory(name="scratch", url=scratch_registry.url, tls_verify=False)
    image = BaseImageFactory(name="runtime/auto", owner_team=service_team, registry=registry)
    digest = put_image(scratch_registry.url, "runtime/auto", "12-1-candidate-9")
    version = ImageVersionFactory(base_image=image, registry=registry, tag="12-1", digest=digest,
                                  state="candidate")  # fmt: skip
    request = make_scanning_request(world, version, service_team)
    body = image_version_apply_gate(version_id=version.pk, actor=Actor.system_actor())
    assert body["verdict"] == "unscanned" and not body["published"]  # not scanned: it waits
    assert ImageRequest.objects.get(pk=request.pk).state == "scanning"
    scanned(version)
    body = image_version_apply_gate(version_id=version.pk, actor=Actor.system_actor())
    assert body["verdict"] == "clean" and body["published"] is True
    assert ImageRequest.objects.get(pk=request.pk).state == "published"
    assert ImageVersion.objects.get(pk=version.pk).state == "approved"


def test_publish_api_answers_409_gate_blocked_with_the_blocking_findings(world, api):
    sbom = scanned(world["version"])
    finding(sbom, advisory("CVE-2026-0071", "critical"))
    api.force_login(world["admin"].user)
    response = api.post(f"/api/v1/image-versions/{world['version'].pk}/publish/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "gate_blocked" and "CVE-2026-0071" in body["detail"]
    assert body["blocking"][0]["advisory"] == "CVE-2026-0071"
    assert body["blocking"][0]["waive"]["url"].startswith("/waivers/new/?advisory=CVE-2026-0071")
    gate = api.get(f"/api/v1/image-versions/{world['version'].pk}/gate/").json()
    assert gate["verdict"] == "blocked" and len(gate["blocking"]) == 1
    unscanned = ImageVersionFactory(base_image=world["image"], tag="12-2", state="candidate")
    response = api.post(f"/api/v1/image-versions/{unscanned.pk}/publish/")
    assert response.status_code == 409 and response.json()["code"] == "gate_blocked"
    assert "Not scanned yet" in response.json()["detail"]


def test_request_page_shows_the_gate_and_refuses_to_publish(world, service_team, client):
    request = make_scanning_request(world, world["version"], service_team)
    sbom = scanned(world["version"])
    finding(sbom, advisory("CVE-2026-0081", "critical"), package="libssl3", source="openssl")
    client.force_login(world["admin"].user)
    page = client.get(f"/image-requests/{request.pk}/").content.decode()
    assert 'id="gate"' in page and "CVE-2026-0081" in page
    assert (
        f"/waivers/new/?advisory=CVE-2026-0081&amp;image_version={world['version'].pk}"
        "&amp;package=libssl3"
    ) in page
    response = client.post(f"/image-requests/{request.pk}/publish/", follow=True)
    flash = response.content.decode().split('class="flash flash-error"', 1)[1].split("</p>")[0]
    assert "The publish gate blocks" in flash and "CVE-2026-0081" in flash
    assert ImageVersion.objects.get(pk=world["version"].pk).state == "candidate"
    assert ImageRequest.objects.get(pk=request.pk).state == "scanning"


def test_apply_gate_publishes_the_portals_own_build_that_asked_for_it(world, scratch_registry):
    from portal.models import Job

    registry = RegistryFactory(name="scratch", url=scratch_registry.url, tls_verify=False)
    image = BaseImageFactory(name="runtime/own", owner_team=world["image"].owner_team,
                             registry=registry)  # fmt: skip
    digest = put_image(scratch_registry.url, "runtime/own", "12-candidate-5")
    asked = Job.objects.create(kind="images.build", params={"publish": True})
    version = ImageVersionFactory(base_image=image, registry=registry, tag="12", digest=digest,
                                  state="candidate", build_job=asked)  # fmt: skip
    sbom = scanned(version)
    finding(sbom, advisory("CVE-2026-0091", "critical"))
    body = image_version_apply_gate(version_id=version.pk, actor=Actor.system_actor())
    assert body["verdict"] == "blocked" and not body["published"]
    assert ImageVersion.objects.get(pk=version.pk).state == "candidate"
    world["version"] = version
    waive(world, "CVE-2026-0091")
    body = image_version_apply_gate(version_id=version.pk, actor=Actor.system_actor())
    assert body["published"] is True
    assert ImageVersion.objects.get(pk=version.pk).state == "approved"
    # a build that did not ask, with no request waiting, is left for a reviewer
    other = ImageVersionFactory(base_image=image, tag="12-b", state="candidate",
                                build_job=Job.objects.create(kind="images.build"))  # fmt: skip
    scanned(other)
    body = image_version_apply_gate(version_id=other.pk, actor=Actor.system_actor())
    assert body["verdict"] == "clean" and body["published"] is False


def test_a_build_that_asks_to_publish_waits_for_the_gate(build_env, platform_team):  # noqa: F811
    """Auto-publish in the build job meets the gate: an unscanned candidate is not published
    (the job still succeeds and says why); the scan's gate publishes it once clean."""
    from images.models import BaseImage
    from portal.jobs import job_create, job_execute
    from portal.models import Job

    image = BaseImage.objects.create(
        name="runtime/debian-gated", kind="runtime", os_family="debian", os_version="12",
        owner_team=platform_team, registry=build_env["registry"],
    )  # fmt: skip
    job, _ = job_create(
        kind="images.build",
        actor=Actor.system_actor("test"),
        params={"image_id": image.pk, "tag": "12", "recipe_kind": "bootstrap",
                "recipe": "suite: bookworm\nvariant: minbase\n", "publish": True},
    )  # fmt: skip
    assert job_execute(job.pk) == "succeeded", Job.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert "not published yet, the publish gate says" in job.log and "Not scanned" in job.log
    version = ImageVersion.objects.get(base_image=image)
    assert version.state == "candidate"
    scanned(version)
    body = image_version_apply_gate(version_id=version.pk, actor=Actor.system_actor())
    assert body["published"] is True
    assert ImageVersion.objects.get(pk=version.pk).state == "approved"
