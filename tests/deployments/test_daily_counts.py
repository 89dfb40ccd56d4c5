"""The dashboard's daily counts: what a day stores (each deployment's newest release by the
day's end), that the chart reads finished days from them and only today live, that a snapshot
and a day-by-day fill agree, the hourly task, and the migration's backfill from releases."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from deployments.models import DeploymentDailyCount, DeploymentDailyCountDay, Release
from deployments.selectors.dashboard import CHART_DAYS, deployments_by_base_over_time
from deployments.services import deployment_daily_counts_fill
from deployments.services.daily_counts import daily_counts_fill_days
from deployments.tasks import fill_daily_counts
from portal.actors import Actor
from tests.deployments.dashboard_world import build_world, forget_daily_counts, release


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _stored(days_ago: int) -> dict[tuple[str, str], int]:
    day = _today() - dt.timedelta(days=days_ago)
    return {
        (row.team.name, row.base_image.name): row.deployments
        for row in DeploymentDailyCount.objects.filter(day=day).select_related("team", "base_image")
    }


@pytest.fixture
def world(service_team, platform_team):
    return build_world(service_team)


@pytest.mark.django_db
def test_a_day_stores_each_deployments_newest_release(world) -> None:
    assert deployment_daily_counts_fill(today=_today(), days=CHART_DAYS) == CHART_DAYS
    assert DeploymentDailyCountDay.objects.count() == CHART_DAYS
    # orders moved centos -> debian 10 days ago; ledger on centos since 120 days ago;
    # indexer (search) started on debian 5 days ago; the dev deployments have no release.
    assert _stored(90) == {("payments", "runtime/centos"): 2}
    assert _stored(11) == {("payments", "runtime/centos"): 2}
    assert _stored(9) == {("payments", "runtime/centos"): 1, ("payments", "runtime/debian"): 1}
    assert _stored(1) == {
        ("payments", "runtime/centos"): 1,
        ("payments", "runtime/debian"): 1,
        ("search", "runtime/debian"): 1,
    }
    assert deployment_daily_counts_fill(today=_today(), days=CHART_DAYS) == 0  # idempotent


@pytest.mark.django_db
def test_a_snapshot_and_a_day_by_day_fill_agree(world) -> None:
    today = _today()
    days = [today - dt.timedelta(days=n) for n in range(1, 40)]
    daily_counts_fill_days(days)  # one snapshot, then 38 days each from the day before
    chained = set(
        DeploymentDailyCount.objects.values_list("day", "team", "base_image", "deployments")
    )
    forget_daily_counts()
    for day in days[::2]:  # every other day: each one a snapshot
        daily_counts_fill_days([day])
    daily_counts_fill_days(days)  # the rest: each from a stored day before it
    assert (
        set(DeploymentDailyCount.objects.values_list("day", "team", "base_image", "deployments"))
        == chained
    )


@pytest.mark.django_db
def test_the_chart_reads_finished_days_and_counts_today_live(world, admin_user) -> None:
    actor = Actor(user=admin_user)
    before = deployments_by_base_over_time(actor, timezone.now())
    # A finished day's count is final: rewriting history (never done by the product) does not
    # change the stored days, which is how we know the chart read them.
    Release.objects.filter(deployment=world.deployments["orders-prod"], number=2).update(
        created_at=timezone.now() - dt.timedelta(days=50)
    )
    # A release made now shows today, without a refill: ledger-prod moves to debian.
    release(world.deployments["ledger-prod"], world.v_debian, 0, 2)
    after = deployments_by_base_over_time(actor, timezone.now())
    old = {s["name"]: s["data"] for s in before["series"]}
    new = {s["name"]: s["data"] for s in after["series"]}
    assert new["runtime/debian"][:-1] == old["runtime/debian"][:-1]
    assert (old["runtime/debian"][-1], new["runtime/debian"][-1]) == (2, 3)
    assert (old["runtime/centos"][-1], new["runtime/centos"][-1]) == (1, 0)


@pytest.mark.django_db
def test_the_hourly_task_stores_yesterday(world) -> None:
    daily_counts_fill_days([_today() - dt.timedelta(days=n) for n in range(2, CHART_DAYS + 1)])
    assert fill_daily_counts() == 1  # yesterday only
    assert fill_daily_counts() == 0
    assert _stored(1)[("search", "runtime/debian")] == 1


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_the_migration_backfills_the_window_from_releases(service_team, platform_team) -> None:
    build_world(service_team)
    leaves = list(MigrationExecutor(connection).loader.graph.leaf_nodes())
    try:
        _migrate([("deployments", "0008_list_order_indexes")])
    finally:
        _migrate(leaves)  # creates the tables again and backfills them from the releases
    assert DeploymentDailyCountDay.objects.count() == CHART_DAYS
    assert _stored(9) == {("payments", "runtime/centos"): 1, ("payments", "runtime/debian"): 1}
    assert _stored(1)[("search", "runtime/debian")] == 1
