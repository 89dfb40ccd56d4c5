"""The plans API: a permission matrix, team scoping of items, bad input, illegal transitions."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from deployments.models import Plan, PlanItem, Release
from deployments.services import plan_apply, rebase_plan_create
from portal.actors import Actor
from portal.choices import Role
from portal.models import Job, Team
from tests.deployments.plan_world import deployments_on, line, run_wave_jobs, with_abi
from tests.images.factories import ImageVersionFactory

pytestmark = pytest.mark.django_db

ADMIN = Actor.system_actor("test-admin")
CALLERS = (
    "anon",
    "viewer",
    "developer",
    "maintainer",
    "admin",
    "token_scoped",
    "token_other",
    "token_admin",
    "outsider",
)


@pytest.fixture(autouse=True)
def _portal_url(settings):
    settings.PORTAL_URL = "https://portal.example.com"


@pytest.fixture
def world(make_user, service_team, platform_team, admin_user):
    old, new = line()
    with_abi(new)
    deployments = deployments_on(old, service_team, {"dev": 1, "prod": 2})
    other_team = Team.objects.create(name="search")
    foreign = deployments_on(old, other_team, {"dev": 1}, prefix="foreign")
    plan = rebase_plan_create(actor=ADMIN, from_version_id=old.pk, to_version_id=new.pk)
    centos = ImageVersionFactory(base_image__name="runtime/centos", tag="7")
    users = {
        "viewer": make_user("v", service_team, Role.VIEWER),
        "developer": make_user("d", service_team, Role.DEVELOPER),
        "maintainer": make_user("m", service_team, Role.MAINTAINER),
        "admin": admin_user,
        "outsider": make_user("o", Team.objects.create(name="elsewhere"), Role.MAINTAINER),
    }
    release = Release.objects.create(
        deployment=deployments[0],
        number=99,
        strategy="hostPath",
        binary_version=deployments[0].binary_version,
        runtime_version=old,
        binary_sha256=deployments[0].binary_version.sha256,
        base_digest=old.digest,
        k8s_version="1.33",
    )
    return {
        "old": old,
        "new": new,
        "plan": plan,
        "centos": centos,
        "users": users,
        "release": release,
        "deployments": deployments,
        "foreign": foreign,
        "team": service_team,
        "platform": platform_team,
    }


def client_for(caller, scope, world, make_token):
    client = APIClient()
    if caller in world["users"]:
        client.force_login(world["users"][caller])
    elif caller == "token_scoped":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(world['team'], [scope])}")
    elif caller == "token_other":
        secret = make_token(world["team"], ["dockerfile:check"])
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    elif caller == "token_admin":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(world['platform'], [scope])}")
    return client


READ, WRITE = "deployments:read", "deployments:write"
#          method  path                                  scope  body-key   anon vie dev mai adm tok oth tad out  # noqa: E501
MATRIX = [
    ("GET", "/api/v1/rebase-plans/", READ, None, (401, 200, 200, 200, 200, 200, 403, 200, 200)),
    (
        "GET",
        "/api/v1/rebase-plans/{plan}/",
        READ,
        None,
        (401, 200, 200, 200, 200, 200, 403, 200, 404),
    ),
    (
        "GET",
        "/api/v1/rebase-plans/{plan}/items/",
        READ,
        None,
        (401, 200, 200, 200, 200, 200, 403, 200, 404),
    ),
    ("GET", "/api/v1/migration-plans/", READ, None, (401, 200, 200, 200, 200, 200, 403, 200, 200)),
    (
        "POST",
        "/api/v1/rebase-plans/",
        WRITE,
        "rebase",
        (401, 403, 403, 403, 201, 403, 403, 201, 403),
    ),
    (
        "POST",
        "/api/v1/migration-plans/",
        WRITE,
        "migration",
        (401, 403, 403, 403, 201, 403, 403, 201, 403),
    ),
    (
        "POST",
        "/api/v1/rebase-plans/{plan}/apply/",
        WRITE,
        None,
        (401, 403, 403, 403, 200, 403, 403, 200, 404),
    ),
    (
        "POST",
        "/api/v1/rebase-plans/{plan}/pause/",
        WRITE,
        None,
        (401, 403, 403, 403, 200, 403, 403, 200, 404),
    ),
    (
        "POST",
        "/api/v1/rebase-plans/{plan}/resume/",
        WRITE,
        None,
        (401, 403, 403, 403, 409, 403, 403, 409, 404),
    ),
    (
        "POST",
        "/api/v1/rebase-plans/{plan}/abort/",
        WRITE,
        None,
        (401, 403, 403, 403, 200, 403, 403, 200, 404),
    ),
    (
        "POST",
        "/api/v1/rebase-plans/{plan}/retry-failed/",
        WRITE,
        None,
        (401, 403, 403, 403, 409, 403, 403, 409, 404),
    ),
    (
        "POST",
        "/api/v1/releases/{release}/status/",
        WRITE,
        "status",
        (401, 403, 200, 200, 200, 200, 403, 200, 404),
    ),
    (
        "POST",
        "/api/v1/releases/{release}/status/",
        READ,
        "status",
        (401, 403, 200, 200, 200, 403, 403, 403, 404),
    ),
]


def _body(kind, world):
    if kind == "rebase":
        return {"from_version": world["old"].pk, "to_version": world["new"].pk}
    if kind == "migration":
        return {"target": world["new"].pk, "team": "search"}
    if kind == "status":
        return {"status": "deployed", "note": "rolled out"}
    return None


def _reset(world, method, path):
    """Every caller meets the same state: the base plan draft (applying for pause), no other."""
    Plan.objects.exclude(pk=world["plan"].pk).delete()
    state = "applying" if path.endswith("/pause/") else "draft"
    if path.endswith("-plans/"):
        state = "aborted"  # creating: the base plan holds none of the deployments
    Plan.objects.filter(pk=world["plan"].pk).update(state=state)
    PlanItem.objects.filter(plan=world["plan"]).update(state="pending")
    Job.objects.filter(kind="deployments.plan_wave").delete()
    Release.objects.filter(pk=world["release"].pk).update(status="")


@pytest.mark.parametrize("entry", MATRIX, ids=lambda r: f"{r[0]} {r[1]} {r[2]}")
def test_permission_matrix(entry, world, make_token):
    method, template, scope, body_kind, statuses = entry
    path = template.format(plan=world["plan"].pk, release=world["release"].pk)
    failures = []
    for caller, expected in zip(CALLERS, statuses, strict=True):
        _reset(world, method, path)
        client = client_for(caller, scope, world, make_token)
        body = _body(body_kind, world)
        response = getattr(client, method.lower())(path, body, format="json")
        if response.status_code != expected:
            failures.append(
                f"{caller}: {response.status_code} != {expected} {response.content[:200]}"
            )
        if response.status_code >= 400:
            assert set(response.json()) >= {"detail", "code"}
    assert not failures, failures


def test_a_team_sees_only_its_items_and_counts(world, make_token):
    client = client_for("developer", READ, world, make_token)
    body = client.get(f"/api/v1/rebase-plans/{world['plan'].pk}/").json()
    assert body["items_count"] == 3 and body["summary"]["total"] == 3
    assert {i["team"] for i in body["items"]} == {"payments"}
    admin = client_for("admin", READ, world, make_token)
    body = admin.get(f"/api/v1/rebase-plans/{world['plan'].pk}/").json()
    assert body["items_count"] == 4
    assert body["summary"]["by_state"]["pending"] == 4
    assert body["items"][0]["wave"] == 0 and body["items"][0]["verdict"] == "compatible"
    listed = admin.get("/api/v1/rebase-plans/").json()
    assert listed["results"][0]["items_count"] == 4
    # a rebase plan is not a migration plan
    assert admin.get(f"/api/v1/migration-plans/{world['plan'].pk}/").status_code == 404


def test_create_answers_the_dry_run_table(world, make_token):
    Plan.objects.all().delete()
    admin = client_for("admin", WRITE, world, make_token)
    response = admin.post(
        "/api/v1/rebase-plans/",
        {"from_version": world["old"].pk, "to_version": world["new"].pk, "wave_size": 1},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "draft" and body["wave_size"] == 1
    assert [i["wave"] for i in body["items"]] == [0, 1, 2, 3]
    assert {i["verdict"] for i in body["items"]} == {"compatible"}
    assert not Release.objects.exclude(pk=world["release"].pk).exists()
    # the same deployments again: they are in that plan (409 duplicate)
    again = admin.post(
        "/api/v1/rebase-plans/",
        {"from_version": world["old"].pk, "to_version": world["new"].pk},
        format="json",
    )
    assert again.status_code == 409 and again.json()["code"] == "duplicate"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"from_version": "x", "to_version": 1},
        {"from_version": 999999, "to_version": 999998},
        {"from_version": -1, "to_version": 1},
        {"from_version": "{old}", "to_version": "{new}", "wave_size": 0},
        {"from_version": "{old}", "to_version": "{new}", "wave_size": 10**6},
        {"from_version": "{old}", "to_version": "{new}", "soak_seconds": -1},
        {"from_version": "{old}", "to_version": "{old}"},
        {"from_version": "{old}", "to_version": "{centos}"},
    ],
)
def test_rebase_bad_input_is_400_and_creates_nothing(body, world, make_token):
    ids = {"{old}": world["old"].pk, "{new}": world["new"].pk, "{centos}": world["centos"].pk}
    body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = Plan.objects.count()
    response = client_for("admin", WRITE, world, make_token).post(
        "/api/v1/rebase-plans/", body, format="json"
    )
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert Plan.objects.count() == before


@pytest.mark.parametrize(
    "body",
    [
        {"target": "{new}"},
        {"target": "{new}", "deployments": "1,2"},
        {"target": "{new}", "deployments": [999999]},
        {"target": "{new}", "deployments": list(range(1, 10_002))},
        {"target": "{new}", "team": "nobody"},
        {"target": "{new}", "environment": "nowhere"},
        {"target": "{new}", "base_image": 999999},
        {"target": "{old}", "team": "search"},
        {"team": "search"},
    ],
)
def test_migration_bad_input_is_400_and_creates_nothing(body, world, make_token):
    ids = {"{old}": world["old"].pk, "{new}": world["new"].pk}
    body = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = Plan.objects.count()
    response = client_for("admin", WRITE, world, make_token).post(
        "/api/v1/migration-plans/", body, format="json"
    )
    assert response.status_code == 400, response.json()
    assert Plan.objects.count() == before


def test_illegal_transitions_are_409_and_unknown_plans_404(world, make_token):
    admin = client_for("admin", WRITE, world, make_token)
    base = f"/api/v1/rebase-plans/{world['plan'].pk}"
    for verb in ("pause", "resume", "retry-failed"):
        response = admin.post(f"{base}/{verb}/")
        assert response.status_code == 409, (verb, response.json())
        assert response.json()["code"] == "illegal_transition"
    assert admin.post(f"{base}/apply/").status_code == 200
    assert admin.post(f"{base}/apply/").status_code == 409
    assert admin.post(f"{base}/abort/").json()["state"] == "aborted"
    assert admin.post(f"{base}/abort/").status_code == 409
    assert admin.post("/api/v1/rebase-plans/999999/apply/").status_code == 404
    assert admin.post("/api/v1/rebase-plans/abc/apply/").status_code == 404
    assert Plan.objects.get(pk=world["plan"].pk).state == "aborted"


def test_apply_through_the_api_then_cd_reports(world, make_token):
    admin = client_for("admin", WRITE, world, make_token)
    response = admin.post(f"/api/v1/rebase-plans/{world['plan'].pk}/apply/")
    assert response.status_code == 200 and response.json()["state"] == "applying"
    run_wave_jobs(world["plan"])
    canary = PlanItem.objects.get(plan=world["plan"], wave=0)
    cd = client_for("token_scoped", WRITE, world, make_token)
    if canary.deployment.service.team_id != world["team"].pk:
        cd = client_for("token_admin", WRITE, world, make_token)
    response = cd.post(
        f"/api/v1/releases/{canary.release_id}/status/",
        {"status": "healthy", "note": "all pods ready"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "healthy"
    detail = admin.get(f"/api/v1/rebase-plans/{world['plan'].pk}/").json()
    assert detail["current_wave"] == 1
    assert detail["summary"]["by_state"]["healthy"] == 1
    assert detail["summary"]["progress_percent"] > 0
    assert plan_apply  # the same service the API action calls
