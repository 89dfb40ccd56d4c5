"""Waivers: request validation, four-eyes approval, revoke, coverage by alias / package /
scope, expiry by date without a rescan, audit entries, and the OpenVEX export."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from images.models import Waiver
from images.services import (
    active_waivers_for,
    waiver_approve,
    waiver_reject,
    waiver_request,
    waiver_revoke,
    waivers_openvex,
)
from images.vulns.openvex import openvex_validate
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.choices import Role
from portal.jobs import IllegalTransition
from portal.models import AuditEntry, Team
from tests.images.factories import BaseImageFactory, ImageVersionFactory
from tests.images.scandata import advisory, finding, scanned

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user, service_team, platform_team, admin_user):
    image = BaseImageFactory(name="runtime/payments-base", owner_team=service_team)
    version = ImageVersionFactory(base_image=image, tag="12-1", state="candidate")
    other_image = BaseImageFactory(name="runtime/other", owner_team=platform_team)
    other_version = ImageVersionFactory(base_image=other_image, tag="12-1", state="candidate")
    return {
        "image": image,
        "version": version,
        "other_image": other_image,
        "other_version": other_version,
        "dev": Actor(user=make_user("dev", service_team, Role.DEVELOPER)),
        "viewer": Actor(user=make_user("viewer", service_team, Role.VIEWER)),
        "stranger": Actor(
            user=make_user("stranger", Team.objects.create(name="search"), Role.MAINTAINER)
        ),
        "admin": Actor(user=admin_user),
        "admin2": Actor(user=make_user("bob-admin", platform_team, Role.PLATFORM_ADMIN)),
        "cve": advisory("CVE-2026-1000", aliases=()),
        "dsa": advisory("DSA-5999-1", aliases=("CVE-2026-1000",)),
    }


def later(days: float = 30) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days)


def request(world, actor="dev", **overrides):
    body = {
        "actor": world[actor],
        "advisory_ref": "CVE-2026-1000",
        "scope": "image_version",
        "image_version_id": world["version"].pk,
        "status": "not_affected",
        "justification": "vulnerable_code_not_in_execute_path",
        "expires_at": later(),
    }
    body.update(overrides)
    return waiver_request(**body)


def test_request_approve_and_audit(world):
    waiver = request(world, package_name="libc6")
    assert waiver.state == "requested" and waiver.requested_by == world["dev"].user
    approved = waiver_approve(waiver_id=waiver.pk, actor=world["admin"], note="ok")
    assert approved.state == "approved" and approved.approved_by == world["admin"].user
    assert approved.decided_at is not None and approved.decision_note == "ok"
    actions = list(
        AuditEntry.objects.filter(object_id=str(waiver.pk), action__startswith="waiver.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["waiver.request", "waiver.approve"]
    waiver_revoke(waiver_id=waiver.pk, actor=world["dev"])
    assert Waiver.objects.get(pk=waiver.pk).state == "revoked"
    assert AuditEntry.objects.filter(action="waiver.revoke", object_id=str(waiver.pk)).exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"advisory_ref": "CVE-2099-0001"}, "advisory_ref", "No imported advisory"),
        ({"advisory_ref": ""}, "advisory_ref", "Name the advisory"),
        ({"advisory_ref": "X" * 101}, "advisory_ref", "at most 100"),
        ({"package_name": "p" * 256}, "package_name", "at most 255"),
        ({"expires_at": None}, "expires_at", "needs an expiry"),
        ({"expires_at": timezone.now() - dt.timedelta(hours=1)}, "expires_at", "future"),
        ({"expires_at": timezone.now() + dt.timedelta(days=181)}, "expires_at", "at most 180"),
        ({"expires_at": dt.datetime(2099, 1, 1)}, "expires_at", "time zone"),  # noqa: DTZ001
        ({"justification": ""}, "justification", "not_affected waiver needs"),
        ({"justification": "because"}, "justification", "Unknown justification"),
        ({"status": "maybe"}, "status", "Unknown status"),
        ({"status": "affected", "justification": ""}, "action_statement", "action statement"),
        ({"scope": "galaxy"}, "scope", "Unknown scope"),
        ({"image_version_id": None}, "image_version", "needs the version"),
        ({"image_version_id": 999999}, "image_version", "No image version"),
        ({"scope": "base_image", "image_version_id": None, "base_image_id": 999999}, "base_image",
         "No base image"),
        ({"base_image_id": 1}, "scope", "names only its image_version"),
        ({"scope": "team", "image_version_id": None}, "team", "needs the team"),
        ({"scope": "service", "image_version_id": None}, "service_name", "needs the service"),
        ({"scope": "service", "image_version_id": None, "service_name": "nope"}, "service_name",
         "Unknown service"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_with_a_clear_message(world, overrides, field, message):
    with pytest.raises(ValidationError) as exc:
        request(world, **overrides)
    assert field in exc.value.message_dict, exc.value.message_dict
    assert message in " ".join(exc.value.message_dict[field])
    assert not Waiver.objects.exists()


def test_openvex_statement_rules_accept_the_alternatives(world):
    impact = request(world, justification="", impact_statement="Only used at build time.")
    assert impact.impact_statement == "Only used at build time."
    affected = request(
        world, status="affected", justification="", action_statement="Upgrade next sprint.",
        package_name="libc6",
    )  # fmt: skip
    assert affected.status == "affected"


def test_an_alias_is_a_known_advisory_ref(world):
    advisory("DEBIAN-CVE-2026-2000", aliases=("CVE-2026-2000",))
    waiver = request(world, advisory_ref="CVE-2026-2000")
    assert waiver.advisory_ref == "CVE-2026-2000"


def test_requester_must_belong_to_the_scope_team(world, service_team):
    with pytest.raises(PermissionDenied):
        request(world, actor="stranger")
    with pytest.raises(PermissionDenied):  # a viewer of the owner team cannot request
        request(world, actor="viewer")
    with pytest.raises(PermissionDenied):  # another team's image
        request(world, image_version_id=world["other_version"].pk)
    with pytest.raises(PermissionDenied):  # team scope: members of that team only
        request(world, actor="stranger", scope="team", image_version_id=None,
                team_id=service_team.pk)  # fmt: skip
    team_waiver = request(world, scope="team", image_version_id=None, team_id=service_team.pk)
    assert team_waiver.team == service_team
    # platform admins may request for any target
    assert request(world, actor="admin", image_version_id=world["other_version"].pk).pk


def test_service_scope_resolves_the_team_through_deployments(world, service_team):
    from deployments.models import Service

    Service.objects.create(name="checkout", team=service_team)
    waiver = request(world, scope="service", image_version_id=None, service_name="checkout")
    assert waiver.team_id == service_team.pk and waiver.service_name == "checkout"
    with pytest.raises(PermissionDenied):
        request(world, actor="stranger", scope="service", image_version_id=None,
                service_name="checkout")  # fmt: skip


def test_duplicate_open_waiver_is_409_until_revoked(world):
    first = request(world, package_name="libc6")
    with pytest.raises(Conflict) as exc:
        request(world, package_name="libc6")
    assert exc.value.get_codes() == "duplicate"
    request(world, package_name="libc6-dev")  # another package is another waiver
    waiver_approve(waiver_id=first.pk, actor=world["admin"])
    with pytest.raises(Conflict):
        request(world, package_name="libc6")
    waiver_revoke(waiver_id=first.pk, actor=world["admin"])
    assert request(world, package_name="libc6").pk != first.pk


def test_four_eyes_and_illegal_transitions(world):
    own = request(world, actor="admin")
    with pytest.raises(PermissionDenied, match="another platform admin"):
        waiver_approve(waiver_id=own.pk, actor=world["admin"])
    with pytest.raises(PermissionDenied, match="another platform admin"):
        waiver_reject(waiver_id=own.pk, actor=world["admin"])
    waiver = request(world, package_name="zlib1g")
    for actor in ("dev", "viewer", "stranger"):
        with pytest.raises(PermissionDenied):
            waiver_approve(waiver_id=waiver.pk, actor=world[actor])
    waiver_reject(waiver_id=waiver.pk, actor=world["admin2"], note="no")
    with pytest.raises(IllegalTransition):
        waiver_approve(waiver_id=waiver.pk, actor=world["admin2"])
    with pytest.raises(IllegalTransition):
        waiver_revoke(waiver_id=waiver.pk, actor=world["dev"])
    other = request(world, package_name="perl-base")
    with pytest.raises(PermissionDenied):  # neither requester nor admin
        waiver_revoke(waiver_id=other.pk, actor=world["stranger"])
    waiver_approve(waiver_id=other.pk, actor=world["admin2"])
    with pytest.raises(IllegalTransition):
        waiver_approve(waiver_id=other.pk, actor=world["admin"])


def test_an_expired_request_cannot_be_approved(world):
    waiver = request(world)
    Waiver.objects.filter(pk=waiver.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    with pytest.raises(Conflict) as exc:
        waiver_approve(waiver_id=waiver.pk, actor=world["admin"])
    assert exc.value.get_codes() == "expired"


def approved(world, **overrides):
    waiver = request(world, **overrides)
    return waiver_approve(waiver_id=waiver.pk, actor=world["admin"])


def context(world):
    version = world["version"]
    return {
        "image_version_id": version.pk,
        "base_image_id": version.base_image_id,
        "team_id": version.base_image.owner_team_id,
    }


def test_coverage_by_alias_in_both_directions(world):
    sbom = scanned(world["version"])
    via_dsa = finding(sbom, world["dsa"], package="libc6", source="glibc")
    via_cve = finding(sbom, world["cve"], package="libc-bin", source="glibc")
    assert active_waivers_for([via_dsa, via_cve], **context(world)) == {}
    cve_waiver = approved(world, advisory_ref="CVE-2026-1000")
    covered = active_waivers_for([via_dsa, via_cve], **context(world))
    # waiving CVE-X covers DSA-Y, which aliases CVE-X, and CVE-X itself
    assert covered == {via_dsa.pk: cve_waiver, via_cve.pk: cve_waiver}
    waiver_revoke(waiver_id=cve_waiver.pk, actor=world["dev"])
    dsa_waiver = approved(world, advisory_ref="DSA-5999-1")
    covered = active_waivers_for([via_dsa, via_cve], **context(world))
    # and waiving DSA-Y covers CVE-X's own record (the reverse direction)
    assert covered == {via_dsa.pk: dsa_waiver, via_cve.pk: dsa_waiver}


def test_related_records_are_not_the_same_vulnerability(world):
    related = advisory("GHSA-xxxx-yyyy-zzzz", aliases=("CVE-2026-1000",), kind="related")
    sbom = scanned(world["version"])
    found = finding(sbom, related, package="openssl", source="openssl")
    approved(world, advisory_ref="CVE-2026-1000")
    assert active_waivers_for([found], **context(world)) == {}


def test_package_selector_matches_binary_or_source_name(world):
    sbom = scanned(world["version"])
    libc = finding(sbom, world["cve"], package="libc6", source="glibc")
    other = finding(sbom, advisory("CVE-2026-1001"), package="zlib1g", source="zlib")
    by_source = approved(world, package_name="glibc")
    assert active_waivers_for([libc, other], **context(world)) == {libc.pk: by_source}
    waiver_revoke(waiver_id=by_source.pk, actor=world["admin"])
    approved(world, package_name="libc-bin")  # a package the finding is not in
    assert active_waivers_for([libc], **context(world)) == {}


def test_scope_must_match_the_context(world, service_team):
    from deployments.models import Service

    Service.objects.create(name="checkout", team=service_team)
    sbom = scanned(world["version"])
    libc = finding(sbom, world["cve"])
    other_ctx = {"image_version_id": world["other_version"].pk,
                 "base_image_id": world["other_image"].pk}  # fmt: skip
    approved(world)  # image-version scope: this version only
    assert active_waivers_for([libc], **other_ctx) == {}
    assert libc.pk in active_waivers_for([libc], **context(world))
    service = approved(
        world, scope="service", image_version_id=None, service_name="checkout", package_name="x"
    )
    assert service.pk
    svc = approved(world, scope="service", image_version_id=None, service_name="checkout")
    assert active_waivers_for([libc], service_name="checkout") == {libc.pk: svc}
    assert active_waivers_for([libc], service_name="billing") == {}
    team = approved(world, scope="team", image_version_id=None, team_id=service_team.pk)
    assert active_waivers_for([libc], team_id=service_team.pk) == {libc.pk: team}
    base = approved(world, scope="base_image", image_version_id=None,
                    base_image_id=world["image"].pk)  # fmt: skip
    assert active_waivers_for([libc], base_image_id=world["image"].pk) == {libc.pk: base}
    # the narrowest scope wins when several cover the finding
    assert active_waivers_for([libc], **context(world))[libc.pk].scope == "image_version"


def test_expiry_takes_effect_by_date_without_a_rescan(world):
    sbom = scanned(world["version"])
    libc = finding(sbom, world["cve"])
    waiver = approved(world)
    assert libc.pk in active_waivers_for([libc], **context(world))
    Waiver.objects.filter(pk=waiver.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert active_waivers_for([libc], **context(world)) == {}
    pending = request(world, package_name="libc6")  # requested, not approved: no cover
    assert pending.state == "requested"
    assert active_waivers_for([libc], **context(world)) == {}


def test_openvex_export_is_valid_and_lists_only_active_waivers(world, settings):
    approved(world, package_name="libc6")
    approved(world, advisory_ref="DSA-5999-1", status="affected", justification="",
             action_statement="Rebuild on the next point release.")  # fmt: skip
    expired = approved(world, package_name="zlib1g")
    Waiver.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    request(world, package_name="openssl")  # requested only
    document = waivers_openvex(actor=world["admin"])
    assert openvex_validate(document) == []
    assert document["@context"] == "https://openvex.dev/ns/v0.2.0"
    assert len(document["statements"]) == 2
    first, second = document["statements"]
    assert first["vulnerability"] == {"name": "CVE-2026-1000", "aliases": ["DSA-5999-1"]}
    assert first["status"] == "not_affected"
    assert first["justification"] == "vulnerable_code_not_in_execute_path"
    assert first["products"][0]["@id"].startswith("pkg:oci/payments-base@sha256%3A")
    assert second["vulnerability"]["aliases"] == ["CVE-2026-1000"]
    assert second["action_statement"].startswith("Rebuild")
    # a stranger's export holds none of this team's waivers
    assert waivers_openvex(actor=world["stranger"])["statements"] == []


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d.pop("@context"), "@context"),
        (lambda d: d.update({"@id": ""}), "@id"),
        (lambda d: d.pop("author"), "author"),
        (lambda d: d.update({"timestamp": "yesterday"}), "timestamp"),
        (lambda d: d.update({"version": "1"}), "version"),
        (lambda d: d.update({"statements": {}}), "statements"),
        (lambda d: d["statements"][0].update({"status": "fine"}), "status"),
        (lambda d: d["statements"][0].update({"justification": "trust me"}), "justification"),
        (lambda d: d["statements"][0].pop("justification"), "needs a justification"),
        (lambda d: d["statements"][0].update({"products": []}), "products"),
        (lambda d: d["statements"][0]["vulnerability"].pop("name"), "vulnerability.name"),
        (lambda d: d["statements"][0].update({"status": "affected"}), "action_statement"),
    ],
)
def test_openvex_validator_catches_broken_documents(world, mutate, error):
    approved(world)
    document = waivers_openvex(actor=world["admin"])
    assert openvex_validate(document) == []
    mutate(document)
    problems = openvex_validate(document)
    assert problems and any(error in p for p in problems), problems
