"""The dashboard's history: how many deployments ran on each base image at the end of each day.

Kept so the home page's chart reads O(days × teams × images) rows instead of replaying 90
days of releases. Rows are derived data, filled for complete days (UTC) from the releases by
`deployment_daily_counts_fill` (hourly from beat, on demand when the chart finds a day
missing, and backfilled by the migration that created them). A day's rows never change once
its marker exists: releases are immutable and only ever created now, so a finished day's
history is final.
"""

from __future__ import annotations

from django.db import models


class DeploymentDailyCount(models.Model):
    """At the end of `day`, `deployments` of `team`'s deployments ran on `base_image` (by their
    newest release; a deployment without a release runs nowhere yet). Zero counts are not
    stored. `team` is the service's team when the day was counted."""

    day = models.DateField()
    team = models.ForeignKey("portal.Team", on_delete=models.CASCADE, related_name="+")
    base_image = models.ForeignKey("images.BaseImage", on_delete=models.CASCADE, related_name="+")
    deployments = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team", "base_image"], name="daily_count_unique_day_team_base"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.deployments} on base image {self.base_image_id}"


class DeploymentDailyCountDay(models.Model):
    """A day whose counts are stored, all of them (a day may have no row: nothing ran)."""

    day = models.DateField(primary_key=True)
    filled_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.day)
