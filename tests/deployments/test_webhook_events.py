"""The services announce their events through `portal.events.event_emit`: an image request's
state change, a new release, new findings — each becomes a delivery of a subscribed team."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deployments.services import release_create
from images.services.findings import sbom_match
from portal.actors import Actor
from portal.choices import Role
from portal.models import Team
from portal.webhooks.models import WebhookDelivery
from portal.webhooks.services import webhook_subscription_create
from tests.deployments.factories import DeploymentFactory, EnvironmentFactory, ServiceFactory
from tests.images.matching_support import add_package, load, make_sbom
from tests.images.test_workflow import catalog, create, dev_api  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
ALL = [
    "io.baseimage.portal.image_request.state_changed",
    "io.baseimage.portal.release.created",
    "io.baseimage.portal.finding.created",
    "io.baseimage.portal.rebase_plan.changed",
    "io.baseimage.portal.image_version.published",
    "io.baseimage.portal.image_version.superseded",
]


def _subscribe(team: Team, make_user: Any) -> None:
    role = Role.PLATFORM_ADMIN if team.is_platform else Role.MAINTAINER
    owner = make_user(f"hooks-{team.name}", team, role)
    webhook_subscription_create(
        team=team, name="all", url="https://hooks.example.com/in", event_types=ALL,
        actor=Actor(user=owner),
    )  # fmt: skip


def _events(team: Team, event_type: str) -> list[dict[str, Any]]:
    return [
        json.loads(d.body)
        for d in WebhookDelivery.objects.filter(subscription__team=team, event_type=event_type)
    ]


def test_request_state_changes(
    catalog: Any,  # noqa: F811 - the imported fixture
    dev_api: Any,  # noqa: F811 - the imported fixture
    service_team: Team,
    make_user: Any,
) -> None:
    _subscribe(service_team, make_user)
    draft = create(dev_api)
    assert dev_api.post(f"/api/v1/image-requests/{draft['id']}/submit/").status_code == 200
    [event] = _events(service_team, "io.baseimage.portal.image_request.state_changed")
    assert event["subject"] == f"image-requests/{draft['id']}"
    assert event["data"]["from"] == "draft" and event["data"]["to"] == "submitted"
    assert event["portalteam"] == "payments"


def test_release_created(service_team: Team, make_user: Any, platform_team: Team) -> None:
    _subscribe(service_team, make_user)
    _subscribe(platform_team, make_user)
    orders = Team.objects.create(name="orders")
    _subscribe(orders, make_user)
    developer = make_user("dana", service_team, Role.DEVELOPER)
    deployment = DeploymentFactory(
        service=ServiceFactory(name="pay-api", team=service_team),
        environment=EnvironmentFactory(name="dev", namespace="dev", delivery_strategy="initFetch"),
    )
    release = release_create(actor=Actor(user=developer), deployment=deployment)
    [event] = _events(service_team, "io.baseimage.portal.release.created")
    assert event["subject"] == f"releases/{release.pk}"
    assert event["data"]["service"] == "pay-api" and event["data"]["number"] == 1
    assert event["data"]["manifest_sha256"] == release.manifest_sha256
    assert len(_events(platform_team, "io.baseimage.portal.release.created")) == 1
    assert _events(orders, "io.baseimage.portal.release.created") == []  # not their service


def test_findings_created(platform_team: Team, service_team: Team, make_user: Any) -> None:
    _subscribe(platform_team, make_user)
    _subscribe(service_team, make_user)
    load("DEBIAN-CVE-2023-4911")
    sbom = make_sbom("Debian:12", [("bash", "5.2.15-2+b2")])
    add_package(sbom, "Debian:12", ("libc6", "2.36-9+deb12u2", "glibc", "2.36-9+deb12u2"))
    assert sbom_match(sbom_id=sbom.id)["new"] == 1
    [event] = _events(platform_team, "io.baseimage.portal.finding.created")
    assert event["subject"] == f"sboms/{sbom.id}" and event["data"]["new"] == 1
    # An SBOM of no image version (a binary's): the platform teams only.
    assert _events(service_team, "io.baseimage.portal.finding.created") == []
    sbom_match(sbom_id=sbom.id)  # nothing new: no second event
    assert len(_events(platform_team, "io.baseimage.portal.finding.created")) == 1


def test_publish_announces_published_and_superseded(
    scratch_registry: Any, platform_team: Team, service_team: Team, make_user: Any, admin_user: Any
) -> None:
    from images.services import image_version_publish
    from tests.fixtures.registry import put_image
    from tests.images.factories import BaseImageFactory, ImageVersionFactory, RegistryFactory

    _subscribe(service_team, make_user)  # another team: catalog events are public
    registry = RegistryFactory(name="scratch", url=scratch_registry.url, tls_verify=False)
    image = BaseImageFactory(name="runtime/debian", owner_team=platform_team, registry=registry)
    old = ImageVersionFactory(base_image=image, registry=registry, tag="12", state="approved")
    digest = put_image(scratch_registry.url, "runtime/debian", "12-1-candidate-1")
    new = ImageVersionFactory(
        base_image=image, registry=registry, tag="12-1", digest=digest, state="candidate"
    )
    image_version_publish(version=new, actor=Actor(user=admin_user))
    [published] = _events(service_team, "io.baseimage.portal.image_version.published")
    assert published["subject"] == f"image-versions/{new.pk}"
    assert published["data"]["digest"] == digest and published["data"]["state"] == "approved"
    assert published["data"]["supersedes"] == [old.digest]
    assert published["portalteam"] == "platform"
    [superseded] = [
        json.loads(d.body)
        for d in WebhookDelivery.objects.filter(
            event_type="io.baseimage.portal.image_version.superseded"
        )
    ]
    assert superseded["subject"] == f"image-versions/{old.pk}"
    assert superseded["data"]["superseded_by"]["digest"] == digest


def test_revoked_announcement(service_team: Team, make_user: Any) -> None:
    from images.services import image_version_announce_revoked
    from tests.images.factories import ImageVersionFactory

    _subscribe(service_team, make_user)
    webhook = service_team.webhook_subscriptions.get()
    webhook.event_types = [*webhook.event_types, "io.baseimage.portal.image_version.revoked"]
    webhook.save()
    version = ImageVersionFactory(state="revoked")
    image_version_announce_revoked(version=version, reason="CVE-2026-99901, no fix")
    [event] = _events(service_team, "io.baseimage.portal.image_version.revoked")
    assert event["data"]["reason"] == "CVE-2026-99901, no fix"
    assert event["data"]["state"] == "revoked" and event["data"]["digest"] == version.digest
