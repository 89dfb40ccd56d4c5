"""Starting an advisory import: a path, an upload or a mirror URL becomes a job; its failure."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from images.advisories.sources import (
    Limits,
    SourceError,
    check_mirror_url,
    resolve_import_path,
)
from images.choices import ImportSource
from images.models import AdvisoryImport
from images.texts import message_render
from portal.actors import Actor
from portal.audit import audit_record
from portal.jobs import job_create
from portal.models import Job

ADVISORY_IMPORT_JOB_KIND = "images.advisory_import"
ERRORS_CAP = 500
SAFE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class AdvisoryUploadTooLarge(Exception):
    """The uploaded file is over PORTAL_ADVISORY_UPLOAD_MAX_BYTES (the API answers 413)."""


def import_limits() -> Limits:
    """The limits of one import, from settings."""
    return Limits(
        max_entries=settings.PORTAL_ADVISORY_MAX_ENTRIES,
        max_total_bytes=settings.PORTAL_ADVISORY_MAX_TOTAL_BYTES,
        max_entry_bytes=settings.PORTAL_ADVISORY_MAX_RECORD_BYTES,
        max_file_bytes=settings.PORTAL_ADVISORY_MAX_FILE_BYTES,
        max_json_bytes=settings.PORTAL_ADVISORY_MAX_JSON_BYTES,
    )


def upload_dir() -> Path:
    """Where uploads wait for their import job (removed when the job is done with them)."""
    return Path(settings.PORTAL_ADVISORY_UPLOAD_DIR).resolve()


def _store_upload(upload: UploadedFile[Any]) -> Path:
    limit = settings.PORTAL_ADVISORY_UPLOAD_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise AdvisoryUploadTooLarge(
            gettext("The upload is %(size)s bytes; the limit is %(limit)s bytes.")
            % {"size": upload.size, "limit": limit}
        )
    name = "".join(c if c in SAFE_NAME_CHARS else "_" for c in (upload.name or "upload"))[-100:]
    directory = upload_dir() / uuid.uuid4().hex
    directory.mkdir(parents=True, exist_ok=False)
    target = directory / (name.lstrip(".") or "upload")
    written = 0
    try:
        with target.open("wb") as handle:
            for chunk in upload.chunks():
                written += len(chunk)
                if written > limit:
                    raise AdvisoryUploadTooLarge(
                        gettext("The upload is larger than the limit of %(limit)s bytes.")
                        % {"limit": limit}
                    )
                handle.write(chunk)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return target


def advisory_import_start(
    *,
    actor: Actor,
    path: str | None = None,
    upload: UploadedFile[Any] | None = None,
    url: str | None = None,
) -> Job:
    """Check the one source given, record an AdvisoryImport and queue its job (queue default).

    Raises:
        ValidationError: none or several sources, a path outside the import roots or missing,
            a URL that is not under an allowed mirror.
        AdvisoryUploadTooLarge: the upload is over PORTAL_ADVISORY_UPLOAD_MAX_BYTES.
    """
    given = [name for name, value in (("path", path), ("upload", upload), ("url", url)) if value]
    if len(given) != 1:
        raise ValidationError(
            gettext(
                "Give exactly one source: a server path, an uploaded file or a mirror URL (got "
                "%(given)s)."
            )
            % {"given": ", ".join(given)}
            if given
            else gettext(
                "Give exactly one source: a server path, an uploaded file or a mirror URL."
            )
        )
    params: dict[str, Any] = {}
    if path:
        try:
            real = resolve_import_path(path, settings.PORTAL_ADVISORY_IMPORT_ROOTS)
        except SourceError as exc:
            raise ValidationError({"path": message_render(exc.args[0], gettext)}) from exc
        kind, source = ImportSource.PATH, str(real)
    elif url:
        try:
            source = check_mirror_url(url, settings.PORTAL_ADVISORY_MIRRORS)
        except SourceError as exc:
            raise ValidationError({"url": message_render(exc.args[0], gettext)}) from exc
        kind = ImportSource.URL
    else:
        assert upload is not None  # noqa: S101 - one of the three is set (checked above)
        stored = _store_upload(upload)
        kind, source = ImportSource.UPLOAD, (upload.name or stored.name)[:1000]
        params["stored_path"] = str(stored)
    try:
        with transaction.atomic():
            record = AdvisoryImport(
                source_kind=kind,
                source=source[:1000],
                created_by=actor.person if actor.person is not None and actor.person.pk else None,
            )
            record.full_clean()
            record.save()
            job, _ = job_create(
                kind=ADVISORY_IMPORT_JOB_KIND,
                actor=actor,
                params={"import_id": record.pk, **params},
                target=record,
            )
            record.job = job
            record.save(update_fields=["job"])
            audit_record(
                actor=actor,
                action="advisory_import.start",
                obj=record,
                after={"source_kind": kind, "source": source[:300], "job": job.pk},
            )
    except BaseException:
        if "stored_path" in params:
            shutil.rmtree(Path(params["stored_path"]).parent, ignore_errors=True)
        raise
    return job


def advisory_import_job_failed(job: Job) -> None:
    """`on_failure` of the import job kind: however the job ended (a refused source, a crash, a
    lost worker, a cancel), its import is marked finished with the reason and its upload removed.
    """
    stored = (job.params or {}).get("stored_path")
    if stored:
        directory = Path(stored).resolve().parent
        if directory.is_relative_to(upload_dir()) and directory != upload_dir():
            shutil.rmtree(directory, ignore_errors=True)
    for record in AdvisoryImport.objects.filter(job=job, finished_at=None):
        reason = job.error or f"The import job #{job.pk} was {job.state}."
        record.errors = [*record.errors, {"record": "(job)", "reason": reason[:500]}][:ERRORS_CAP]
        record.finished_at = timezone.now()
        record.save(update_fields=["errors", "finished_at"])
