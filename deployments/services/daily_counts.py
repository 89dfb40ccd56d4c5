"""Writes of the dashboard's daily counts: fill the complete days (UTC) the table is missing.

A day D is counted either from the day before it (its stored rows plus what D's releases
changed: one query over D's releases) or, when D-1 is not stored, as a snapshot (one grouped
anti-join over every release before D's end). The migration that created the table
backfills the chart's window from the existing releases with the same code, given its
historical models.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery

from ..models import DeploymentDailyCount, DeploymentDailyCountDay, Release

# Keyed by (team id, base image id).
Counts = Counter[tuple[int, int]]


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants `day` starts and ends at."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _newest_before(release_model: Any, end: dt.datetime) -> Exists:
    """A later release of the same deployment, created before `end` (the anti-join)."""
    return Exists(
        release_model.objects.filter(
            deployment=OuterRef("deployment"), number__gt=OuterRef("number"), created_at__lt=end
        )
    )


def daily_counts_snapshot(release_model: Any, end: dt.datetime) -> Counts:
    """Per (team, base image): the deployments whose newest release before `end` runs on it."""
    rows = (
        release_model.objects.filter(created_at__lt=end)
        .exclude(_newest_before(release_model, end))
        .order_by()
        .values_list("deployment__service__team_id", "runtime_version__base_image_id")
        .annotate(n=Count("id"))
    )
    return Counter({(team, base): n for team, base, n in rows})


def daily_counts_delta(
    release_model: Any, start: dt.datetime, end: dt.datetime, scope: Q | None = None
) -> Counts:
    """What the releases created in [start, end) changed: +1 on each deployment's newest base
    in the interval, -1 on its newest base before `start` (if it had one). One query."""
    previous = (
        release_model.objects.filter(deployment=OuterRef("deployment"), created_at__lt=start)
        .order_by("-number")
        .values("runtime_version__base_image_id")[:1]
    )
    rows = (
        release_model.objects.filter(scope or Q(), created_at__gte=start, created_at__lt=end)
        .exclude(_newest_before(release_model, end))
        .order_by()
        .annotate(previous_base=Subquery(previous))
        .values_list(
            "deployment__service__team_id", "runtime_version__base_image_id", "previous_base"
        )
    )
    delta: Counts = Counter()
    for team, base, previous_base in rows:
        delta[(team, base)] += 1
        if previous_base is not None:
            delta[(team, previous_base)] -= 1
    return delta


def daily_counts_fill_days(
    days: list[dt.date],
    *,
    release_model: Any = Release,
    count_model: Any = DeploymentDailyCount,
    day_model: Any = DeploymentDailyCountDay,
) -> int:
    """Count each of `days` (complete days, any order) not stored yet; return how many were.

    Each day is written in its own transaction with its marker; a concurrent fill computes the
    same rows, and its duplicates are ignored.
    """
    wanted = sorted(set(days))
    if not wanted:
        return 0
    stored = set(
        day_model.objects.filter(
            day__gte=wanted[0] - dt.timedelta(days=1), day__lte=wanted[-1]
        ).values_list("day", flat=True)
    )
    filled = 0
    previous: tuple[dt.date, Counts] | None = None
    for day in wanted:
        if day in stored:
            previous = None
            continue
        start, end = day_bounds(day)
        yesterday = day - dt.timedelta(days=1)
        if previous is not None and previous[0] == yesterday:
            counts = previous[1] + Counter()  # a copy
            counts.update(daily_counts_delta(release_model, start, end))
        elif yesterday in stored:
            counts = Counter(
                {
                    (team, base): n
                    for team, base, n in count_model.objects.filter(day=yesterday).values_list(
                        "team_id", "base_image_id", "deployments"
                    )
                }
            )
            counts.update(daily_counts_delta(release_model, start, end))
        else:
            counts = daily_counts_snapshot(release_model, end)
        counts = Counter({key: n for key, n in counts.items() if n > 0})
        with transaction.atomic():
            count_model.objects.bulk_create(
                [
                    count_model(day=day, team_id=team, base_image_id=base, deployments=n)
                    for (team, base), n in sorted(counts.items())
                ],
                batch_size=2000,
                ignore_conflicts=True,
            )
            day_model.objects.bulk_create([day_model(day=day)], ignore_conflicts=True)
        stored.add(day)
        previous = (day, counts)
        filled += 1
    return filled


def deployment_daily_counts_fill(*, today: dt.date, days: int) -> int:
    """Store the `days` complete days before `today` (UTC) that are missing; return how many
    were. One query when none is (the markers)."""
    return daily_counts_fill_days([today - dt.timedelta(days=n) for n in range(1, days + 1)])
