"""Streaming upload of binaries: hash while writing to a temporary file, enforce the limit.

`BinaryUploadHandler` replaces Django's default upload handlers for the binary upload
(API and UI): the file part is written chunk by chunk to a temporary file in
`PORTAL_UPLOAD_TEMP_DIR` while its sha256 is computed, so memory use does not depend on the
file's size. The request is refused with 413 before any byte is read when `Content-Length`
is over the limit, and during the stream when the file part grows past it. A body that
ends before the file part is complete (client gone, truncated request) is reported as such;
in every failure the temporary file is removed.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from typing import Any

from django.conf import settings
from django.core.files import temp as tempfile
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers
from rest_framework import exceptions

from portal.api.errors import PayloadTooLarge

# Room for the multipart framing and the small form fields around the file.
MULTIPART_OVERHEAD = 1024 * 1024
CHUNK_SIZE = 4 * 1024 * 1024
FILE_FIELD = "file"


class UploadRejected(exceptions.APIException):
    """The upload cannot be accepted; `status_code` is the HTTP status to answer with."""

    status_code = 400
    default_code = "invalid_upload"

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status_code = status


def max_binary_bytes() -> int:
    """The configured size limit of one binary."""
    return int(settings.PORTAL_BINARY_MAX_BYTES)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def too_large_message(limit: int) -> str:
    """The 413 message."""
    return f"The binary is larger than the limit of {_human(limit)} ({limit} bytes)."


def check_content_length(meta: dict[str, Any]) -> None:
    """Refuse a request from its headers alone, before any body byte is read.

    Raises:
        PayloadTooLarge: Content-Length is over the limit (plus the multipart framing).
        UploadRejected: no usable Content-Length (411), e.g. a chunked request body.
    """
    limit = max_binary_bytes()
    raw = meta.get("CONTENT_LENGTH") or ""
    if not raw:
        raise UploadRejected(
            "Send the upload with a Content-Length header (chunked request bodies are not "
            "accepted).",
            status=411,
        )
    try:
        length = int(raw)
    except ValueError as exc:
        raise UploadRejected(f"Content-Length {raw!r} is not a number.") from exc
    if length < 0:
        raise UploadRejected(f"Content-Length {raw!r} is negative.")
    if length > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(too_large_message(limit))


class HashedUploadedFile(TemporaryUploadedFile):
    """A temporary uploaded file in `temp_dir` that knows its sha256 once complete."""

    def __init__(
        self, name: str, content_type: str | None, charset: str | None, temp_dir: str
    ) -> None:
        file = tempfile.NamedTemporaryFile(suffix=".upload", prefix="binary-", dir=temp_dir)
        UploadedFile.__init__(self, file, name, content_type, 0, charset, None)
        self.sha256 = ""


class BinaryUploadHandler(FileUploadHandler):
    """Stream the `file` part to a temporary file while hashing it; enforce the size limit.

    After parsing, `interrupted` is True when the body ended inside the file part.
    """

    chunk_size = CHUNK_SIZE

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit = max_binary_bytes()
        self.file: HashedUploadedFile | None = None
        self.hasher = hashlib.sha256()
        self.writer: _Writer | None = None
        self.received = 0
        self.files_seen = 0
        self.interrupted = False

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],  # noqa: N803 - Django's signature
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        if content_length > self.limit + MULTIPART_OVERHEAD:
            raise PayloadTooLarge(too_large_message(self.limit))

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.files_seen += 1
        if field_name != FILE_FIELD or self.files_seen > 1:
            self._discard()
            raise UploadRejected(
                f"Send exactly one file, in the form field {FILE_FIELD!r} "
                f"(got a file in {field_name!r})."
            )
        temp_dir = settings.PORTAL_UPLOAD_TEMP_DIR
        os.makedirs(temp_dir, exist_ok=True)
        # TemporaryUploadedFile writes to FILE_UPLOAD_TEMP_DIR; point it at ours.
        self.file = HashedUploadedFile(file_name, self.content_type, self.charset, temp_dir)
        self.writer = _Writer(self.file, self.hasher)
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.file is not None  # noqa: S101 - new_file ran first
        self.received += len(raw_data)
        if self.received > self.limit:
            self._discard()
            raise PayloadTooLarge(too_large_message(self.limit))
        assert self.writer is not None  # noqa: S101 - started with the file
        self.writer.put(raw_data)

    def file_complete(self, file_size: int) -> HashedUploadedFile | None:
        if self.file is None or self.writer is None:
            return None
        self.writer.finish()
        self.writer = None
        self.file.flush()
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256 = self.hasher.hexdigest()
        return self.file

    def upload_interrupted(self) -> None:
        self.interrupted = True
        self._discard()

    def _discard(self) -> None:
        if self.writer is not None:
            self.writer.finish(check=False)
            self.writer = None
        if self.file is not None:
            self.file.close()  # a NamedTemporaryFile: closing removes it
            self.file = None


class _Writer:
    """Hash and write chunks on a second thread, so both overlap with parsing the body.

    hashlib and file writes release the GIL on large buffers; the queue is bounded, so at
    most `DEPTH` chunks are held in memory.
    """

    DEPTH = 4

    def __init__(self, file: Any, hasher: Any) -> None:
        self.file = file
        self.hasher = hasher
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self.DEPTH)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="upload-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (chunk := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain after a failure
            try:
                self.hasher.update(chunk)
                self.file.write(chunk)
            except BaseException as exc:  # reported by finish() in the request thread
                self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(chunk)

    def finish(self, *, check: bool = True) -> None:
        self.queue.put(None)
        self.thread.join()
        if check and self.error is not None:
            raise self.error


def install_upload_handler(request: Any) -> BinaryUploadHandler:
    """Make `request` parse its body with a fresh BinaryUploadHandler (before it is read)."""
    handler = BinaryUploadHandler(request)
    request.upload_handlers = [handler]
    return handler
