"""Teams and policy exceptions changed app: a database populated on the old migrations keeps
every row, id and link after migrating to the new ones (on the test database, PostgreSQL in CI).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

# The last migrations before Team/Membership moved to `portal` and PolicyException to
# `deployments`.
OLD = [("portal", "0001_initial"), ("deployments", "0002_initial"), ("images", "0002_initial")]


def _migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _leaves() -> list[tuple[str, str]]:
    """Every app's latest migration: going back to OLD also unapplies the apps that depend on
    those (webhooks), so the way forward must name them too, or their tables stay dropped
    for the tests that follow."""
    executor = MigrationExecutor(connection)
    return list(executor.loader.graph.leaf_nodes())


def _populate(apps: object) -> dict[str, int]:
    """Rows on the old schema, through the historical models."""
    get = apps.get_model  # type: ignore[attr-defined]
    user = get("auth", "User").objects.create(username="old-dev")
    team = get("deployments", "Team").objects.create(name="payments", display_name="Payments")
    platform = get("deployments", "Team").objects.create(name="platform", is_platform=True)
    membership = get("deployments", "Membership").objects.create(
        team=team, user=user, role="maintainer"
    )
    token = get("portal", "ApiToken").objects.create(
        name="ci", team=team, scopes=["images:read"], prefix="abcd1234", secret_hash="0" * 64
    )
    job = get("portal", "Job").objects.create(kind="images.build", team=team)
    registry = get("images", "Registry").objects.create(name="local", url="http://127.0.0.1:5000")
    image = get("images", "BaseImage").objects.create(
        name="runtime/debian",
        kind="runtime",
        os_family="debian",
        os_version="12",
        owner_team=platform,
        registry=registry,
    )
    request = get("images", "ImageRequest").objects.create(
        name="runtime/debian",
        tag="12.1",
        kind="runtime",
        os_family="debian",
        recipe_kind="dockerfile",
        recipe="FROM scratch\n",
        justification="test",
        team=team,
        requested_by=user,
    )
    service = get("deployments", "Service").objects.create(name="checkout", team=team)
    exception = get("images", "PolicyException").objects.create(
        service=service,
        subject="runtime/alpine",
        justification="legacy",
        approved_by=user,
        expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    content_type = get("contenttypes", "ContentType")
    team_type = content_type.objects.get_or_create(app_label="deployments", model="team")[0]
    exception_type = content_type.objects.get_or_create(
        app_label="images", model="policyexception"
    )[0]
    audit = get("portal", "AuditEntry").objects.create(
        actor_repr="user:old-dev",
        action="team.create",
        object_type=team_type,
        object_id=str(team.pk),
        object_repr="payments",
    )
    waiver_audit = get("portal", "AuditEntry").objects.create(
        actor_repr="user:old-dev",
        action="policy_exception.create",
        object_type=exception_type,
        object_id=str(exception.pk),
    )
    return {
        "user": user.pk,
        "team": team.pk,
        "platform": platform.pk,
        "membership": membership.pk,
        "token": token.pk,
        "job": job.pk,
        "image": image.pk,
        "request": request.pk,
        "service": service.pk,
        "exception": exception.pk,
        "audit": audit.pk,
        "waiver_audit": waiver_audit.pk,
        "team_type": team_type.pk,
    }


@pytest.mark.django_db(transaction=True)
def test_team_move_keeps_rows_ids_and_links() -> None:
    leaves = _leaves()
    old = _migrate(OLD)
    ids = _populate(old.loader.project_state(OLD).apps)

    _migrate(leaves)

    from deployments.models import PolicyException, Service
    from images.models import BaseImage, ImageRequest
    from portal.models import ApiToken, AuditEntry, Job, Membership, Team

    team = Team.objects.get(pk=ids["team"])
    assert (team.name, team.display_name, team.is_platform) == ("payments", "Payments", False)
    assert Team.objects.get(pk=ids["platform"]).is_platform
    membership = Membership.objects.get(pk=ids["membership"])
    assert (membership.team_id, membership.user_id, membership.role) == (
        ids["team"],
        ids["user"],
        "maintainer",
    )
    assert [u.pk for u in team.members.all()] == [ids["user"]]
    assert ApiToken.objects.get(pk=ids["token"]).team_id == ids["team"]
    assert Job.objects.get(pk=ids["job"]).team_id == ids["team"]
    assert BaseImage.objects.get(pk=ids["image"]).owner_team_id == ids["platform"]
    assert ImageRequest.objects.get(pk=ids["request"]).team_id == ids["team"]
    assert Service.objects.get(pk=ids["service"]).team_id == ids["team"]
    exception = PolicyException.objects.get(pk=ids["exception"])
    assert (exception.service_id, exception.subject, exception.approved_by_id) == (
        ids["service"],
        "runtime/alpine",
        ids["user"],
    )

    # Audit entries still point at the same objects through their (moved) content types.
    audit = AuditEntry.objects.get(pk=ids["audit"])
    assert audit.object_type_id == ids["team_type"]
    assert audit.object_type.model_class() is Team
    waiver_audit = AuditEntry.objects.get(pk=ids["waiver_audit"])
    assert waiver_audit.object_type.model_class() is PolicyException

    # The tables carry the new names, and the database still enforces the foreign keys.
    tables = set(connection.introspection.table_names())
    assert {"portal_team", "portal_membership", "deployments_policyexception"} <= tables
    assert not {"deployments_team", "deployments_membership", "images_policyexception"} & tables
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(team_id=10**9, user_id=ids["user"], role="viewer")
    with pytest.raises(IntegrityError), transaction.atomic():
        Service.objects.create(name="orphan", team_id=10**9)

    # New rows take ids after the old ones.
    assert Team.objects.create(name="search").pk > ids["platform"]


@pytest.mark.django_db(transaction=True)
def test_0005_marks_the_existing_fetch_tokens_by_their_old_name() -> None:
    """Fetch tokens were recognised by name and scopes; 0005 makes them kind=fetch."""
    before = [("portal", "0004_job_process_group")]
    apps = _migrate(before).loader.project_state(before).apps
    team = apps.get_model("portal", "Team")
    token = apps.get_model("portal", "ApiToken")
    platform = team.objects.create(name="platform", is_platform=True)
    payments = team.objects.create(name="payments")
    stamp = "20261201-101010-000001"
    rows = {
        "fetch": (platform, f"fetch-prod-eu-{stamp}", ["binaries:read"]),
        "wider": (platform, f"fetch-prod-{stamp}", ["binaries:read", "images:read"]),
        "service": (payments, f"fetch-prod-{stamp}", ["binaries:read"]),
        "named": (platform, "fetch-prod-ci", ["binaries:read"]),
    }
    ids = {}
    for n, (key, (owner, name, scopes)) in enumerate(rows.items()):
        ids[key] = token.objects.create(
            name=name, team=owner, scopes=scopes, prefix=f"p{n}", secret_hash="0" * 64
        ).pk
    after = [("portal", "0005_apitoken_kind")]
    apps = _migrate(after).loader.project_state(after).apps
    kinds = dict(apps.get_model("portal", "ApiToken").objects.values_list("pk", "kind"))
    assert {key: kinds[pk] for key, pk in ids.items()} == {
        "fetch": "fetch",
        "wider": "api",
        "service": "api",
        "named": "api",
    }
    _migrate(_leaves())
