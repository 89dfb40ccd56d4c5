"""The home page's reads: the catalog's standing, the deployments at risk per team, the EOL
horizon, the review queue, deployments by base image over time, and what nodes pull in volume
mode versus image mode.

Composed here (the top layer) because it needs both apps. Every part is one query whatever
the number of rows (the chart: four, reading the daily counts); lists are capped.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from images.choices import ImageStatus, RequestState, VersionState
from images.models import BaseImage
from images.selectors import image_request_list_for_actor
from portal.actors import Actor

from ..choices import DeploymentMode
from ..filtersets import eol_q, vulnerable_base_q
from ..models import Deployment, DeploymentDailyCount, Release
from ..services.daily_counts import daily_counts_delta, day_bounds, deployment_daily_counts_fill
from . import team_readable

EOL_HORIZON_DAYS = 90
CHART_DAYS = 90
CHART_SERIES = 8
QUEUE_LIMIT = 5
EOL_LIMIT = 20

# The at-risk columns: (key, DeploymentFilterSet query string).
RISKS: tuple[tuple[str, str], ...] = (
    ("deprecated", "base_status=deprecated"),
    ("eol", "eol=true"),
    ("superseded", "version_state=superseded"),
    ("revoked", "version_state=revoked"),
    ("vulnerable", "vulnerable=true"),
)


@dataclass
class Dashboard:
    """What the home page shows, as plain values (JSON-ready but for `today`)."""

    today: dt.date
    images_by_status: list[dict[str, Any]]
    risk_by_team: list[dict[str, Any]]
    risk_totals: dict[str, int]
    eol_soon: list[dict[str, Any]]
    review_count: int
    review_queue: list[dict[str, Any]]
    review_scope: str
    chart: dict[str, Any]
    pull_footprint: list[dict[str, Any]]
    deployment_count: int
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The API's body (dates as ISO strings)."""
        return {
            "today": self.today.isoformat(),
            "images_by_status": self.images_by_status,
            "risk_by_team": self.risk_by_team,
            "risk_totals": self.risk_totals,
            "eol_soon": [{**row, "eol_date": row["eol_date"].isoformat()} for row in self.eol_soon],
            "review_queue": {
                "count": self.review_count,
                "scope": self.review_scope,
                "oldest": [
                    {
                        **row,
                        "submitted_at": row["submitted_at"].isoformat()
                        if row["submitted_at"]
                        else None,
                    }
                    for row in self.review_queue
                ],
            },
            "deployments_by_base_image": self.chart,
            "pull_footprint": self.pull_footprint,
            "eol_horizon_days": EOL_HORIZON_DAYS,
        }


def images_by_status() -> list[dict[str, Any]]:
    """Catalog entries per status, every status listed (one query)."""
    counts = dict(
        BaseImage.objects.order_by()
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return [
        {"status": value, "label": label, "count": counts.get(value, 0)}
        for value, label in ImageStatus.choices
    ]


def risk_by_team(actor: Actor, today: dt.date) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per team the actor may read: deployments on deprecated, EOL, superseded, revoked or
    vulnerable runtime bases (one grouped query)."""
    rows = (
        Deployment.objects.filter(team_readable(actor, "service__team"))
        .order_by()
        .values("service__team__name")
        .annotate(
            total=Count("id"),
            deprecated=Count(
                "id", filter=Q(runtime_version__base_image__status=ImageStatus.DEPRECATED)
            ),
            eol=Count("id", filter=eol_q(today)),
            superseded=Count("id", filter=Q(runtime_version__state=VersionState.SUPERSEDED)),
            revoked=Count("id", filter=Q(runtime_version__state=VersionState.REVOKED)),
            vulnerable=Count("id", filter=vulnerable_base_q()),
        )
        .order_by("service__team__name")
    )
    teams: list[dict[str, Any]] = []
    totals: Counter[str] = Counter()
    for row in rows:
        values: dict[str, Any] = dict(row)
        risks = {key: int(values[key]) for key, _ in RISKS}
        totals.update(risks)
        totals["total"] += row["total"]
        teams.append({"team": values["service__team__name"], "total": row["total"], **risks})
    return teams, {key: totals[key] for key in ("total", *(k for k, _ in RISKS))}


def eol_soon(actor: Actor, today: dt.date) -> list[dict[str, Any]]:
    """Catalog entries whose OS reaches its end of life within the horizon, soonest first,
    with how many of the actor's readable deployments run on them (one query)."""
    readable = Deployment.objects.filter(team_readable(actor, "service__team")).filter(
        runtime_version__base_image=OuterRef("pk")
    )
    images = (
        BaseImage.objects.filter(
            eol_date__gt=today, eol_date__lte=today + dt.timedelta(days=EOL_HORIZON_DAYS)
        )
        .annotate(
            deployments=Subquery(
                readable.order_by()
                .values("runtime_version__base_image")
                .annotate(n=Count("id"))
                .values("n")[:1]
            )
        )
        .order_by("eol_date", "name")
        .values("name", "status", "eol_date", "deployments")[:EOL_LIMIT]
    )
    return [
        {
            "name": row["name"],
            "status": row["status"],
            "eol_date": row["eol_date"],
            "days_left": (row["eol_date"] - today).days if row["eol_date"] else 0,
            "deployments": row["deployments"] or 0,
        }
        for row in images
    ]


def review_queue(actor: Actor) -> tuple[int, list[dict[str, Any]], str]:
    """Submitted requests waiting for a reviewer: every one for platform admins (who review),
    else the actor's own and its teams'. Returns (count, the oldest few, scope)."""
    queue = image_request_list_for_actor(actor).filter(state=RequestState.SUBMITTED)
    count = queue.count()
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in queue.order_by("submitted_at", "id").values(
            "id", "name", "tag", "kind", "team__name", "submitted_at"
        )[:QUEUE_LIMIT]
    ]
    return count, rows, "all" if actor.is_platform_admin else "teams"


def review_queue_count(actor: Actor) -> int:
    """How many requests wait for review, for the navigation's badge (one query)."""
    return image_request_list_for_actor(actor).filter(state=RequestState.SUBMITTED).count()


def deployments_by_base_over_time(
    actor: Actor, now: dt.datetime, days: int = CHART_DAYS
) -> dict[str, Any]:
    """Per day of the last `days` (UTC), how many readable deployments ran on each base image.

    A deployment runs on the base image of its newest release up to that day's end (one
    without a release runs nowhere yet). The finished days come from the daily counts
    (`DeploymentDailyCount`, O(days × teams × images) rows, whatever the number of releases);
    the days missing there are filled first (normally none: beat fills them hourly). Today is
    yesterday's counts plus what today's releases changed. Four queries: the filled days'
    markers, the stored counts, today's releases, the base images' names. The
    `CHART_SERIES - 1` biggest base images get their own series; the rest is summed as "other".
    """
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    # The day before the window too: today's counts start from yesterday's.
    deployment_daily_counts_fill(today=today, days=days)
    by_day: dict[dt.date, Counter[int]] = defaultdict(Counter)
    for day, base, n in (
        DeploymentDailyCount.objects.filter(
            team_readable(actor, "team"), day__gte=first - dt.timedelta(days=1), day__lt=today
        )
        .order_by()
        .values_list("day", "base_image_id")
        .annotate(n=Sum("deployments"))
    ):
        by_day[day][base] = n  # summed over the readable teams by the database
    start, end = day_bounds(today)
    live = by_day[today - dt.timedelta(days=1)] + Counter()  # a copy
    for (_team, base), n in daily_counts_delta(
        Release, start, end, team_readable(actor, "deployment__service__team")
    ).items():
        live[base] += n
    by_day[today] = live
    bases = {base for day_counts in by_day.values() for base in day_counts}
    name_of = dict(BaseImage.objects.filter(pk__in=sorted(bases)).values_list("id", "name"))
    labels: list[str] = []
    daily: list[dict[str, int]] = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        labels.append(day.isoformat())
        named: Counter[str] = Counter()
        for base, n in by_day.get(day, Counter()).items():
            named[name_of[base]] += n
        daily.append({name: n for name, n in named.items() if n > 0})
    peak: Counter[str] = Counter()
    for day_counts in daily:
        for name, n in day_counts.items():
            peak[name] = max(peak[name], n)
    ranked = sorted(peak, key=lambda n: (-peak[n], n))
    names = ranked if len(ranked) <= CHART_SERIES else ranked[: CHART_SERIES - 1]
    series: list[dict[str, Any]] = [
        {"name": name, "data": [day.get(name, 0) for day in daily]} for name in names
    ]
    rest = [sum(n for name, n in day.items() if name not in names) for day in daily]
    if any(rest):
        series.append({"name": "other", "data": rest, "other": True})
    return {"labels": labels, "series": series, "days": days}


def pull_footprint(actor: Actor) -> list[dict[str, Any]]:
    """Per environment: the distinct images and bytes its nodes must pull in volume mode
    versus image mode, for the deployments as they are (whatever mode each uses now).

    Volume mode: every deployment mounts its binary into the unchanged runtime base, so nodes
    pull each distinct runtime image version once (bytes: their catalog sizes); the binaries
    arrive by the environment's delivery strategy, not as images. Image mode: every deployment
    is its own app image (`FROM` the base + the binary), so nodes pull one image per deployment;
    with the base layers shared, the bytes are the distinct bases plus one application layer
    per deployment (its binary's size). A base-image fix costs volume mode no rebuild and a new
    pull of the fixed bases; image mode rebuilds and re-pulls every app image.

    One grouped query (environment × runtime version); images of unknown size are counted.
    """
    rows = (
        Deployment.objects.filter(team_readable(actor, "service__team"))
        .order_by()
        .values("environment__name", "runtime_version_id", "runtime_version__size")
        .annotate(
            deployments=Count("id"),
            binary_bytes=Sum("binary_version__size"),
            volume_now=Count("id", filter=Q(mode=DeploymentMode.VOLUME)),
        )
    )
    envs: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "deployments": 0,
            "volume_deployments": 0,
            "bases": 0,
            "base_bytes": 0,
            "binary_bytes": 0,
            "unknown_sizes": 0,
        }
    )
    for row in rows:
        env = envs[row["environment__name"]]
        env["deployments"] += row["deployments"]
        env["volume_deployments"] += row["volume_now"]
        env["bases"] += 1
        if row["runtime_version__size"] is None:
            env["unknown_sizes"] += 1
        else:
            env["base_bytes"] += row["runtime_version__size"]
        env["binary_bytes"] += row["binary_bytes"] or 0
    result = []
    for name in sorted(envs):
        env = envs[name]
        image_bytes = env["base_bytes"] + env["binary_bytes"]
        result.append(
            {
                "environment": name,
                **env,
                "volume_images": env["bases"],
                "volume_bytes": env["base_bytes"],
                "image_images": env["deployments"],
                "image_bytes": image_bytes,
                "image_rebuilds_per_fix": env["deployments"],
                "images_saved": env["deployments"] - env["bases"],
            }
        )
    return result


def dashboard_for_actor(
    actor: Actor, now: dt.datetime | None = None, *, with_chart: bool = True
) -> Dashboard:
    """Everything the home page shows, scoped to what `actor` may read. The page leaves the
    chart out (`with_chart=False`, its costliest part) and fetches it as an htmx fragment."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    teams, totals = risk_by_team(actor, today)
    count, queue, scope = review_queue(actor)
    return Dashboard(
        today=today,
        images_by_status=images_by_status(),
        risk_by_team=teams,
        risk_totals=totals,
        eol_soon=eol_soon(actor, today),
        review_count=count,
        review_queue=queue,
        review_scope=scope,
        chart=deployments_by_base_over_time(actor, now) if with_chart else {"days": CHART_DAYS},
        pull_footprint=pull_footprint(actor),
        deployment_count=totals["total"],
        notes={"eol_horizon_days": EOL_HORIZON_DAYS, "risks": [k for k, _ in RISKS]},
    )
