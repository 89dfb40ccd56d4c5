"""Catalog curation: status and replacement, revoking a version with a reason; audited,
refused for anyone but platform admins, what it breaks shown first."""

from __future__ import annotations

import pytest
from django.test import Client

from images.models import BaseImage, ImageVersion
from portal.models import AuditEntry
from tests.images.factories import BaseImageFactory, ImageVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def images(platform_team):
    debian = BaseImageFactory(name="runtime/debian", owner_team=platform_team)
    old = BaseImageFactory(
        name="runtime/ubuntu", owner_team=platform_team, os_family="ubuntu", os_version="22.04"
    )
    version = ImageVersionFactory(base_image=debian, tag="12")
    child = ImageVersionFactory(
        base_image=BaseImageFactory(name="runtime/debian-curl", owner_team=platform_team),
        tag="12-1",
        base_digest=version.digest,
    )
    return debian, old, version, child


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_deprecates_with_replacement_and_reason(images, admin_user):
    debian, old, _, _ = images
    client = _client(admin_user)
    assert "Curate this entry" in client.get(f"/base-images/{old.pk}/").content.decode()
    response = client.post(
        f"/base-images/{old.pk}/curate/",
        {"status": "deprecated", "replacement": debian.pk, "reason": "move to Debian"},
    )
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.status == "deprecated" and old.replacement == debian
    assert old.status_note == "move to Debian"
    entry = AuditEntry.objects.get(action="base_image.curate")
    assert entry.before["status"] == "approved" and entry.after["reason"] == "move to Debian"


def test_curation_refusals_change_nothing(images, admin_user, developer):
    debian, old, _, _ = images
    dev = _client(developer)
    assert "Curate this entry" not in dev.get(f"/base-images/{old.pk}/").content.decode()
    refused = dev.post(
        f"/base-images/{old.pk}/curate/",
        {"status": "blocked", "reason": "x", "replacement": debian.pk},
    )
    assert refused.status_code == 403 and "platform admin" in refused.content.decode()
    admin = _client(admin_user)
    for data in (
        {"status": "blocked", "reason": "", "replacement": debian.pk},  # no reason
        {"status": "nope", "reason": "x"},  # unknown status
        {"status": "blocked", "reason": "x"},  # no replacement
        {"status": "blocked", "reason": "x", "replacement": old.pk},  # itself
    ):
        admin.post(f"/base-images/{old.pk}/curate/", data)
    old.refresh_from_db()
    assert (
        old.status == "approved"
        and not AuditEntry.objects.filter(action="base_image.curate").exists()
    )


def test_revoke_page_shows_what_breaks_then_revokes(images, admin_user):
    _, _, version, child = images
    client = _client(admin_user)
    page = client.get(f"/image-versions/{version.pk}/revoke/").content.decode()
    assert "What it breaks" in page and "runtime/debian-curl:12-1" in page
    assert "approved version of runtime/debian" in page
    assert client.post(f"/image-versions/{version.pk}/revoke/", {"reason": ""}).status_code == 400
    version.refresh_from_db()
    assert version.state == "approved"
    response = client.post(f"/image-versions/{version.pk}/revoke/", {"reason": "CVE-2026-1"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.state == "revoked"
    entry = AuditEntry.objects.get(action="image_version.revoke")
    assert entry.after["reason"] == "CVE-2026-1"
    assert entry.after["built_from"] == ["runtime/debian-curl:12-1"]
    again = client.post(f"/image-versions/{version.pk}/revoke/", {"reason": "again"})
    assert again.status_code == 400 and "already revoked" in again.content.decode()


def test_revoke_refused_for_developers(images, developer):
    _, _, version, _ = images
    response = _client(developer).post(f"/image-versions/{version.pk}/revoke/", {"reason": "x"})
    assert response.status_code == 403
    assert ImageVersion.objects.get(pk=version.pk).state == "approved"


def test_curation_api(images, token_client, platform_team, service_team):
    debian, old, version, _ = images
    admin = token_client(platform_team, ["images:read", "images:review"])
    response = admin.post(
        f"/api/v1/base-images/{old.pk}/curate/",
        {"status": "restricted", "reason": "licence", "replacement": "runtime/debian"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "restricted"
    assert response.json()["replacement"] == "runtime/debian"
    bad = admin.post(f"/api/v1/base-images/{old.pk}/curate/", {"status": "blocked"}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()["detail"]
    preview = admin.get(f"/api/v1/image-versions/{version.pk}/revoke/")
    assert preview.status_code == 200 and preview.json()["built_from"] == [
        "runtime/debian-curl:12-1"
    ]
    revoked = admin.post(
        f"/api/v1/image-versions/{version.pk}/revoke/", {"reason": "broken"}, format="json"
    )
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert (
        admin.post(
            f"/api/v1/image-versions/{version.pk}/revoke/", {"reason": "x"}, format="json"
        ).status_code
        == 409
    )
    dev = token_client(service_team, ["images:read", "images:write"])
    assert (
        dev.post(
            f"/api/v1/base-images/{debian.pk}/curate/",
            {"status": "blocked", "reason": "x"},
            format="json",
        ).status_code
        == 403
    )
    assert BaseImage.objects.get(pk=debian.pk).status == "approved"
