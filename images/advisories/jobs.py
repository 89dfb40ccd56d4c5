"""Job kinds of advisory imports (`images.advisory_import`)."""

from __future__ import annotations

from typing import Any

from images.texts import _
from portal.jobs import JobContext, JobFailure, job_kind

from ..models import AdvisoryImport
from ..services.advisories import (
    ADVISORY_IMPORT_JOB_KIND,
    advisory_import_job_failed,
    advisory_import_run,
)
from .sources import SourceError, SourceUnavailable


@job_kind(
    ADVISORY_IMPORT_JOB_KIND,
    queue="default",
    timeout_seconds=3 * 3600,
    max_attempts=2,
    title="Advisory import",
    on_failure=advisory_import_job_failed,
)
def advisory_import(ctx: JobContext) -> dict[str, Any]:
    """Import the OSV records of one AdvisoryImport (params: `import_id`, `stored_path`).

    A log line per rejected record; the result is the import's summary. A refused source (path
    outside the roots, zip bomb, mirror not allowed) fails the job with the reason; a mirror that
    cannot be reached or answers 5xx is tried again (max_attempts).
    """
    try:
        record = AdvisoryImport.objects.get(pk=ctx.params["import_id"])
    except (KeyError, AdvisoryImport.DoesNotExist) as exc:
        raise JobFailure(_("The advisory import this job was started for does not exist.")) from exc
    ctx.set_result_object(record)
    ctx.progress(0, f"reading {record.get_source_kind_display().lower()} {record.source}")
    try:
        return advisory_import_run(
            advisory_import=record,
            stored_path=ctx.params.get("stored_path", ""),
            log=ctx.log,
            progress=ctx.progress,
            check_cancelled=ctx.check_cancelled,
        )
    except SourceUnavailable as exc:  # a mirror down for a moment: the next attempt may work
        raise JobFailure(str(exc), retry=True) from exc
    except SourceError as exc:
        raise JobFailure(str(exc)) from exc
