"""The advisory import job: read, parse and batch the records, tally them, rematch the keys."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from images.advisories.osv import OsvError, parse_record
from images.advisories.sources import (
    RawRecord,
    SourceError,
    count_hint,
    fetch_url,
    iter_file,
    iter_path,
    resolve_import_path,
    resolve_roots,
)
from images.choices import ImportSource
from images.models import AdvisoryImport
from images.services import findings
from images.services.advisories.records import _apply, _Parsed
from images.services.advisories.start import ERRORS_CAP, import_limits, upload_dir
from images.texts import _
from portal.jobs import JobCancelled

logger = logging.getLogger(__package__)  # "images.services.advisories", as before the split
BATCH_SIZE = 500


@dataclass
class _Tally:
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    quarantined: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    changed: set[tuple[str, str]] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)

    def error(self, record: str, reason: str, *, rejected: bool = True) -> None:
        if rejected:
            self.rejected += 1
        if len(self.errors) < ERRORS_CAP:
            self.errors.append({"record": record[:200], "reason": reason[:500]})
        self.lines.append(f"{'rejected' if rejected else 'note'} {record}: {reason}")


def _records(
    advisory_import: AdvisoryImport, stored_path: str, scratch: list[Path]
) -> tuple[Iterator[RawRecord], int | None]:
    """The records of the import's source and how many there will be (None: not known)."""
    limits = import_limits()
    roots = resolve_roots(settings.PORTAL_ADVISORY_IMPORT_ROOTS)
    if advisory_import.source_kind == ImportSource.PATH:
        real = resolve_import_path(advisory_import.source, settings.PORTAL_ADVISORY_IMPORT_ROOTS)
        return iter_path(real, roots=roots, limits=limits), count_hint(real)
    if advisory_import.source_kind == ImportSource.UPLOAD:
        stored = Path(stored_path).resolve()
        if not stored_path or not stored.is_relative_to(upload_dir()) or not stored.is_file():
            raise SourceError(_("The uploaded file is gone (was the job run twice?)."))
        scratch.append(stored.parent)
        records = iter_file(stored, limits=limits, origin=advisory_import.source)
        return records, count_hint(stored)
    fetched = fetch_url(
        advisory_import.source,
        mirrors=settings.PORTAL_ADVISORY_MIRRORS,
        directory=upload_dir(),
        max_bytes=settings.PORTAL_ADVISORY_MAX_FILE_BYTES,
        timeout=settings.PORTAL_ADVISORY_FETCH_TIMEOUT_SECONDS,
    )
    scratch.append(fetched)
    origin = advisory_import.source.rsplit("/", 1)[-1]
    return iter_file(fetched, limits=limits, origin=origin), count_hint(fetched)


def advisory_import_run(
    *,
    advisory_import: AdvisoryImport,
    stored_path: str = "",
    log: Callable[[str], None] = logger.info,
    progress: Callable[[int, str], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Read every record of the import's source and store it; returns the summary.

    Raises:
        SourceError: the source as a whole is refused (recorded on the import as well).
    """
    tally = _Tally()
    scratch: list[Path] = []
    max_record = settings.PORTAL_ADVISORY_MAX_RECORD_BYTES
    batch: list[_Parsed] = []
    batch_ids: set[str] = set()
    seen = 0
    try:
        try:
            records, expected = _records(advisory_import, stored_path, scratch)
            for raw in records:
                seen += 1
                parsed = _parse(raw, tally, max_record)
                if parsed is not None:
                    if parsed.record.id in batch_ids:
                        _flush(batch, advisory_import, tally)  # one revision of an id per batch
                        batch, batch_ids = [], set()
                    batch.append(parsed)
                    batch_ids.add(parsed.record.id)
                if len(batch) >= BATCH_SIZE:
                    _flush(batch, advisory_import, tally)
                    batch, batch_ids = [], set()
                if seen % BATCH_SIZE == 0:
                    _emit(tally, log)
                    if check_cancelled is not None:
                        check_cancelled()
                    if progress is not None:
                        done = int(90 * seen / expected) if expected else seen // BATCH_SIZE
                        of = f" of {expected}" if expected else ""
                        progress(min(90, done), f"{seen}{of} records read")
            _flush(batch, advisory_import, tally)
            batch = []
        except SourceError as exc:
            _flush(batch, advisory_import, tally)  # what was read before is whole and kept
            tally.error("(source)", str(exc), rejected=False)
            _finish(advisory_import, tally, log, progress)
            raise
        except JobCancelled:
            tally.error("(job)", f"cancelled after {seen} records", rejected=False)
            _finish(advisory_import, tally, log, None)  # what was written is re-matched
            raise
        except Exception as exc:
            reason = f"stopped after {seen} records: {type(exc).__name__}: {exc}"
            tally.error("(job)", reason, rejected=False)
            _emit(tally, log)
            _save(advisory_import, tally, finished=True)
            raise
    finally:
        for item in scratch:
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
    keys, rematch = _finish(advisory_import, tally, log, progress)
    summary: dict[str, Any] = {
        "import_id": advisory_import.pk,
        "records": seen,
        "imported": tally.imported,
        "unchanged": tally.unchanged,
        "rejected": tally.rejected,
        "quarantined": tally.quarantined,
        "changed_keys": len(keys),
        "errors": tally.errors[:20],
        "rematch": rematch,
    }
    log(
        f"imported {tally.imported}, unchanged {tally.unchanged}, rejected {tally.rejected}, "
        f"quarantined {tally.quarantined}; {len(keys)} (ecosystem, name) keys changed"
    )
    return summary


def _finish(
    advisory_import: AdvisoryImport,
    tally: _Tally,
    log: Callable[[str], None],
    progress: Callable[[int, str], None] | None,
) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Re-match the keys whose affected rows changed, then save the counts: the keys and the
    re-match's summary (its `packages` count is kept on the import)."""
    _emit(tally, log)
    keys = sorted(tally.changed)
    _save(advisory_import, tally, finished=False)  # the counts stand even if the re-match fails
    if progress is not None:
        progress(95, f"re-matching {len(keys)} changed packages")
    rematch = findings.findings_rematch(keys=keys) or {}
    rematched = rematch.get("packages")
    _save(
        advisory_import,
        tally,
        finished=True,
        rematched=rematched if isinstance(rematched, int) else 0,
    )
    return keys, rematch


def _emit(tally: _Tally, log: Callable[[str], None]) -> None:
    if tally.lines:
        log("\n".join(tally.lines))
        tally.lines.clear()


def _save(
    advisory_import: AdvisoryImport, tally: _Tally, *, finished: bool, rematched: int = 0
) -> None:
    advisory_import.imported = tally.imported
    advisory_import.unchanged = tally.unchanged
    advisory_import.rejected = tally.rejected
    advisory_import.quarantined = tally.quarantined
    advisory_import.errors = tally.errors
    advisory_import.changed_keys = [list(key) for key in sorted(tally.changed)]
    advisory_import.rematched_packages = rematched
    if finished:
        advisory_import.finished_at = timezone.now()
    advisory_import.save()


def _parse(raw: RawRecord, tally: _Tally, max_record: int) -> _Parsed | None:
    if raw.error or raw.data is None:
        tally.error(raw.origin, raw.error or "empty")
        return None
    try:
        record = parse_record(raw.data, max_bytes=max_record)
    except OsvError as exc:
        label = raw.origin
        if isinstance(raw.data, dict) and isinstance(raw.data.get("id"), str):
            label = f"{raw.origin} ({raw.data['id'][:100]})"
        tally.error(label, str(exc))
        return None
    return _Parsed(raw.origin, record)


def _flush(batch: list[_Parsed], advisory_import: AdvisoryImport, tally: _Tally) -> None:
    if not batch:
        return
    try:
        with transaction.atomic():
            outcome = _apply(batch, advisory_import)
    except (DatabaseError, ValueError):  # psycopg2 refuses some values before sending them
        if len(batch) == 1:
            logger.exception("advisory %s refused by the database", batch[0].record.id)
            item = batch[0]
            tally.error(f"{item.origin} ({item.record.id})", "the database refused the record")
            return
        for item in batch:  # find the bad record: one transaction each
            _flush([item], advisory_import, tally)
        return
    tally.imported += outcome.imported
    tally.unchanged += outcome.unchanged
    tally.quarantined += outcome.quarantined
    tally.changed |= outcome.changed
    for line in outcome.lines:
        tally.lines.append(line)
    for record, reason in outcome.notes:
        if len(tally.errors) < ERRORS_CAP:
            tally.errors.append({"record": record[:200], "reason": reason[:500]})
