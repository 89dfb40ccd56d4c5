"""Job kinds of the deployments app."""

from __future__ import annotations

from typing import Any

from portal.actors import Actor
from portal.jobs import JobContext, job_kind

from .services import binary_versions_purge


@job_kind("deployments.purge_binaries", timeout_seconds=1800, max_attempts=2, title="Binary purge")
def purge_binaries(ctx: JobContext) -> dict[str, Any]:
    """Retention: keep the newest N versions per service plus every version in use.

    Params: `keep` (optional) overrides PORTAL_BINARY_KEEP.
    """
    ctx.progress(0, "purging old binary versions")
    result = binary_versions_purge(
        actor=Actor.system_actor(f"job:{ctx.job.pk}"),
        keep=ctx.params.get("keep"),
        log=ctx.log,
    )
    ctx.log(f"purged {result['purged']} version(s), deleted {result['files_deleted']} file(s)")
    return result
