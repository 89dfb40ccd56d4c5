"""Advisory imports: start one (path, upload or mirror URL → a job) and run it.

Records are keyed by (id, modified). The same record twice adds nothing (`unchanged`); a newer
`modified` replaces the current Advisory — its affected and alias rows are replaced and an
AdvisoryRevision is added; an older one is `unchanged` ("older than stored"). Each record is
all-or-nothing: records are written in batches, one transaction per batch, and a batch the
database refuses is retried one record per transaction, so a bad record is rejected alone and
never half imported. The (ecosystem, name) keys whose affected rows changed are handed to
`findings_rematch`, which re-evaluates only those packages (no rescan).

Three rooms:

* `start`: starting an import (a path, an upload or a mirror URL becomes a job), its failure.
* `run`: the import job: read, parse and batch the records, count them, hand keys to rematch.
* `records`: writing one batch: advisory rows, their affected and alias rows, revisions.
"""

from __future__ import annotations

from images.services.advisories.run import BATCH_SIZE, advisory_import_run
from images.services.advisories.start import (
    ADVISORY_IMPORT_JOB_KIND,
    ERRORS_CAP,
    SAFE_NAME_CHARS,
    AdvisoryUploadTooLarge,
    advisory_import_job_failed,
    advisory_import_start,
    import_limits,
    upload_dir,
)

__all__ = [
    "ADVISORY_IMPORT_JOB_KIND",
    "AdvisoryUploadTooLarge",
    "BATCH_SIZE",
    "ERRORS_CAP",
    "SAFE_NAME_CHARS",
    "advisory_import_job_failed",
    "advisory_import_run",
    "advisory_import_start",
    "import_limits",
    "upload_dir",
]
