"""Writes of rebase and migration plans: the dry run, its waves, CD's status reports.

A plan is made as a dry run (`draft`): one item per deployment with its ABI verdict against
the target, its state and its wave. Applying it rolls the waves out: wave 0 is the canary (one
deployment in the lowest environment, see `environment_rank`), then environment by
environment in batches of `wave_size`. Each wave's releases are created by a job
(`deployments.plan_wave`), never in the request: volume mode gets a new release on the target
digest with the same binary (`release_create_many`, the batched `release_create`); image mode
starts an app-image build (`app_image_build_start`) whose job calls back
`plan_item_app_image_built` (or `plan_item_app_image_failed`).

A wave advances (`plan_advance`, also run by beat every 30 s) when all its releases are reported
healthy, or, with `soak_seconds` > 0, once that long has passed since the wave started with no
failure. A failure (a release reported failed, a render refused, a build failed) stops the plan
(`failed`); `plan_retry_failed` resumes it.

Plan states (guarded conditional updates; anything else is `IllegalTransition`, a 409):

    draft    -> applying (apply) | aborted (abort)
    applying -> paused (pause) | completed (no wave left) | failed (a failure) | aborted
    paused   -> applying (resume) | failed (a failure reported meanwhile) | aborted
    failed   -> applying (retry-failed) | aborted

Item states: pending -> released (volume) | building -> released (image); released -> healthy
| failed (CD's report); pending|building -> skipped (abort, re-target); failed -> pending |
released (retry-failed); blocked (incompatible, never released) and skipped are final.

Verdicts: an incompatible item is blocked with its findings, in every plan. An unknown one
(a non-ELF file, a target without ABI facts, the compat module's "cannot tell") is released by
a rebase (same image line, a patch) but skipped by a migration, which releases only compatible
binaries.
"""

from __future__ import annotations

from .create import migration_plan_create, on_image_version_superseded, rebase_plan_create
from .dryrun import (
    MAX_DEPLOYMENT_IDS,
    MAX_SOAK_SECONDS,
    MAX_WAVE_SIZE,
    PLAN_WAVE_JOB_KIND,
    REPORTABLE_STATUSES,
    environment_rank,
    rebuild_remediation,
)
from .reports import release_status_report
from .transitions import (
    plan_abort,
    plan_advance,
    plan_apply,
    plan_pause,
    plan_resume,
    plan_retry_failed,
    plans_advance_all,
)
from .waves import plan_item_app_image_built, plan_item_app_image_failed, plan_wave_release

__all__ = [
    "MAX_DEPLOYMENT_IDS",
    "MAX_SOAK_SECONDS",
    "MAX_WAVE_SIZE",
    "PLAN_WAVE_JOB_KIND",
    "REPORTABLE_STATUSES",
    "environment_rank",
    "migration_plan_create",
    "on_image_version_superseded",
    "plan_abort",
    "plan_advance",
    "plan_apply",
    "plan_item_app_image_built",
    "plan_item_app_image_failed",
    "plan_pause",
    "plan_resume",
    "plan_retry_failed",
    "plan_wave_release",
    "plans_advance_all",
    "rebase_plan_create",
    "rebuild_remediation",
    "release_status_report",
]
