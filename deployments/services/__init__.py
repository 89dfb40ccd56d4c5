"""Writes of the deployments app, one module per entity.

`services` (service_create), `binaries` (binary versions: upload, yank; their OCI
artifact in `binary_artifacts`, ELF facts in `binary_facts`, retention in `binary_retention`),
`scans` (binary scans), `environments` (environments and their fetch tokens),
`deployments` (deployment_create), `releases` (release_create, its batched twin, rollback and
the renderer's input), `plans` (rebase and migration plans, their waves, CD's reports),
`source_builds` (compile a source archive in a build image; the request's checks in
`source_build_checks`, the job's writes in `source_build_jobs`, the SLSA statement in
`source_build_provenance`) and `app_images` (an image-mode deployment's app image on a
runtime version).

Every function is keyword-only, checks who acts (`Actor`) against the owning team, validates
before writing, writes inside one transaction and records an audit row in it. Import from
this package, not from its modules.
"""

from ._common import RESERVED_NAMES
from .app_image_bases import (
    APP_IMAGE_BASE_JOB_KIND,
    app_image_base_read,
    app_image_base_read_queue,
)
from .binaries import binary_version_upload, binary_version_yank
from .binary_artifacts import (
    ARTIFACT_JOB_KIND,
    ARTIFACT_REPOSITORY,
    SHA256_LABEL,
    artifact_repository,
    binary_artifact_ref_problem,
    binary_version_artifact_push,
    binary_version_artifact_set,
)
from .binary_facts import BACKFILL_FACTS_JOB_KIND, binary_facts_backfill, binary_facts_fields
from .binary_retention import binary_versions_in_use, binary_versions_purge
from .daily_counts import deployment_daily_counts_fill
from .deployments import RESOURCE_KEYS, deployment_create
from .environments import FetchToken, environment_create, environment_fetch_token_create
from .plans import (
    MAX_DEPLOYMENT_IDS,
    PLAN_WAVE_JOB_KIND,
    environment_rank,
    migration_plan_create,
    plan_abort,
    plan_advance,
    plan_apply,
    plan_item_app_image_built,
    plan_item_app_image_failed,
    plan_pause,
    plan_resume,
    plan_retry_failed,
    plan_wave_release,
    plans_advance_all,
    rebase_plan_create,
    release_status_report,
)
from .releases import (
    binary_download_url,
    manifest_input_for,
    release_create,
    release_create_many,
    release_rollback,
)
from .scans import (
    BINARY_SCAN_JOB_KIND,
    binary_scan_job_failed,
    binary_version_scan_attach,
    binary_version_scan_failed,
    binary_version_scan_mark_scanning,
    binary_version_scan_start,
)
from .services import service_create
from .source_builds import SOURCE_BUILD_JOB_KIND, source_build_start

__all__ = [
    "APP_IMAGE_BASE_JOB_KIND",
    "app_image_base_read",
    "app_image_base_read_queue",
    "BACKFILL_FACTS_JOB_KIND",
    "binary_facts_backfill",
    "binary_facts_fields",
    "MAX_DEPLOYMENT_IDS",
    "PLAN_WAVE_JOB_KIND",
    "environment_rank",
    "migration_plan_create",
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
    "release_status_report",
    "ARTIFACT_JOB_KIND",
    "ARTIFACT_REPOSITORY",
    "BINARY_SCAN_JOB_KIND",
    "RESERVED_NAMES",
    "RESOURCE_KEYS",
    "SHA256_LABEL",
    "artifact_repository",
    "FetchToken",
    "binary_artifact_ref_problem",
    "binary_download_url",
    "binary_scan_job_failed",
    "binary_version_artifact_push",
    "binary_version_artifact_set",
    "binary_version_scan_attach",
    "binary_version_scan_failed",
    "binary_version_scan_mark_scanning",
    "binary_version_scan_start",
    "binary_version_upload",
    "binary_version_yank",
    "binary_versions_in_use",
    "binary_versions_purge",
    "deployment_create",
    "deployment_daily_counts_fill",
    "environment_create",
    "environment_fetch_token_create",
    "manifest_input_for",
    "release_create",
    "release_create_many",
    "release_rollback",
    "service_create",
    "SOURCE_BUILD_JOB_KIND",
    "source_build_start",
]
