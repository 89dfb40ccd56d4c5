"""CD's status reports: POST /api/v1/releases/{id}/status/ — statuses, bad input, who may."""

from __future__ import annotations

import pytest

from deployments.models import Release
from portal.models import AuditEntry
from tests.deployments.factories import DeploymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(service_team):
    deployment = DeploymentFactory(service__team=service_team)
    return Release.objects.create(
        deployment=deployment,
        number=1,
        strategy="hostPath",
        binary_version=deployment.binary_version,
        runtime_version=deployment.runtime_version,
        binary_sha256=deployment.binary_version.sha256,
        base_digest=deployment.runtime_version.digest,
        k8s_version="1.33",
    )


@pytest.fixture
def cd(token_client, service_team):
    return token_client(service_team, ["deployments:read", "deployments:write"])


def url(release) -> str:
    return f"/api/v1/releases/{release.pk}/status/"


def test_deployed_healthy_then_failed_and_nothing_after_failed(cd, release):
    for status in ("deployed", "healthy", "healthy", "failed"):
        response = cd.post(url(release), {"status": status, "note": status}, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == status
    release.refresh_from_db()
    assert (release.status, release.status_note) == ("failed", "failed")
    assert release.status_at is not None
    response = cd.post(url(release), {"status": "healthy"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "illegal_transition"
    assert Release.objects.get(pk=release.pk).status == "failed"
    assert AuditEntry.objects.filter(action="release.status").count() == 4
    # the release list shows the report
    listed = cd.get(f"/api/v1/releases/{release.pk}/").json()
    assert listed["status"] == "failed"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "unknown"},
        {"status": ""},
        {"status": ["healthy"]},
        {"status": "healthy", "note": "x" * 501},
    ],
)
def test_bad_status_is_400_and_changes_nothing(cd, release, body):
    response = cd.post(url(release), body, format="json")
    assert response.status_code == 400, response.json()
    assert Release.objects.get(pk=release.pk).status == ""


def test_unknown_release_404_and_other_teams_404(cd, token_client, release):
    from portal.models import Team

    assert cd.post("/api/v1/releases/999999/status/", {"status": "healthy"}).status_code == 404
    other = token_client(Team.objects.create(name="search"), ["deployments:write"])
    assert other.post(url(release), {"status": "healthy"}, format="json").status_code == 404
    assert Release.objects.get(pk=release.pk).status == ""


def test_a_viewer_may_not_report(make_user, service_team, release, api):
    from portal.choices import Role

    api.force_login(make_user("viewer1", service_team, Role.VIEWER))
    response = api.post(url(release), {"status": "healthy"}, format="json")
    assert response.status_code == 403
    assert Release.objects.get(pk=release.pk).status == ""
