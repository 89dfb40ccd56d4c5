"""Streaming upload of binaries: hash while writing to a temporary file, enforce the limit.

`BinaryUploadHandler` replaces Django's upload handlers for the binary upload (API and UI)
and answers for the whole body in `handle_raw_input`: it reads the body through the request
in blocks and parses it with `multipart`'s PushMultipartParser (maintained, strict, sans-IO).
The small form fields go into a QueryDict; the file part is written to a temporary file in
`PORTAL_UPLOAD_TEMP_DIR` as it arrives and hashed (sha256) on a second thread meanwhile.
Memory use does not depend on the file's size.

The request is refused with 413 before any byte is read when `Content-Length` is over the
limit, and during the stream when the file part grows past it. Malformed framing is a 400
that says what is wrong. A body that ends before the closing boundary (client gone,
truncated request) sets `interrupted` and yields no file, which the views report as a
truncated request. In every failure the temporary file is removed.
"""

from __future__ import annotations

import hashlib
import html
import os
import queue
import threading
from typing import Any

import multipart
from django.conf import settings
from django.core.files import temp as tempfile
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from django.utils.translation import gettext, gettext_lazy
from rest_framework import exceptions

from portal.api.errors import InsufficientStorage, PayloadTooLarge, is_disk_full

# Room for the multipart framing and the small form fields around the file.
MULTIPART_OVERHEAD = 1024 * 1024
# gunicorn reads a body 1 MiB at a time at most; larger blocks cost more (measured: 2 and
# 4 MiB blocks took 1.5x the CPU time, the copies no longer fitting the CPU caches).
BLOCK_SIZE = 1024 * 1024
FILE_FIELD = "file"
# Limits of the framing (the file part itself is limited by PORTAL_BINARY_MAX_BYTES).
MAX_BOUNDARY = 200
MAX_HEADER_LINE = 16 * 1024
MAX_PADDING = 1024

# The parser's words for malformed framing -> the words this API has always used.
# The parser's words -> what to tell the client (a clause of "Malformed … body: %(what)s.").
_FRAMING_ERRORS: dict[str, Any] = {
    "Unexpected bytes after boundary": gettext_lazy("a boundary line is followed by other text"),
    "Unexpected byte after first boundary": gettext_lazy(
        "a boundary line is followed by other text"
    ),
    "Missing Content-Disposition segment header": gettext_lazy(
        "a part has no Content-Disposition header"
    ),
    "Invalid Content-Disposition segment header: Wrong type": gettext_lazy(
        "a part's Content-Disposition is not form-data with a name"
    ),
    "Malformed segment header": gettext_lazy("a part header line has no 'Name:'"),
    "Maximum segment header length exceeded": gettext_lazy(
        "the headers of a part is longer than %(limit)s bytes"
    ),
}
_PLAIN_ENCODINGS = {"", "binary", "8bit", "7bit"}


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
            gettext(
                "Send the upload with a Content-Length header (chunked request bodies are not "
                "accepted)."
            ),
            status=411,
        )
    try:
        length = int(raw)
    except ValueError as exc:
        raise UploadRejected(
            gettext("Content-Length %(raw)r is not a number.") % {"raw": raw}
        ) from exc
    if length < 0:
        raise UploadRejected(gettext("Content-Length %(raw)r is negative.") % {"raw": raw})
    if length > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(too_large_message(limit))


def _malformed(what: object) -> UploadRejected:
    """`what`: a translated clause saying what is wrong with the body."""
    return UploadRejected(gettext("Malformed multipart/form-data body: %(what)s.") % {"what": what})


def sanitize_file_name(name: str) -> str:
    """The last path component of a client's file name, printable characters only ('' if none).

    The same rules as Django's MultiPartParser: '.' and '..' are no names.
    """
    name = html.unescape(name).rsplit("/")[-1].rsplit("\\")[-1]
    name = "".join(char for char in name if char.isprintable())
    return "" if name in {".", ".."} else name


class HashedUploadedFile(TemporaryUploadedFile):
    """A temporary uploaded file in `temp_dir` that knows its sha256 once complete."""

    def __init__(
        self, name: str, content_type: str | None, charset: str | None, temp_dir: str
    ) -> None:
        file = tempfile.NamedTemporaryFile(suffix=".upload", prefix="binary-", dir=temp_dir)
        UploadedFile.__init__(self, file, name, content_type, 0, charset, None)
        self.sha256 = ""


class BinaryUploadHandler(FileUploadHandler):
    """Parse the multipart body; stream the `file` part to a hashed temporary file.

    `handle_raw_input` does all the work and returns (POST, FILES); the per-chunk handler
    methods are never called. After parsing, `interrupted` is True when the body ended before
    the closing boundary (FILES is empty then).
    """

    #: How many bytes of the body are read, and handed to the parser, at a time.
    block_size = BLOCK_SIZE

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit = max_binary_bytes()
        self.interrupted = False
        self.post = QueryDict(mutable=True)
        self.files: MultiValueDict[str, UploadedFile[Any]] = MultiValueDict()
        self.file: HashedUploadedFile | None = None
        self.hasher: _Hasher | None = None  # while the file part is read
        self.received = self.parts = self.field_bytes = 0
        # The part being read: its field name, and the value's pieces if it is a form field.
        self.name = ""
        self.value: list[bytes] | None = None

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],  # noqa: N803 - Django's signature
        content_length: int,
        boundary: str | bytes,  # bytes from Django, str in its stubs
        encoding: str | None = None,
    ) -> tuple[QueryDict, MultiValueDict[str, UploadedFile[Any]]]:
        if content_length > self.limit + MULTIPART_OVERHEAD:
            raise PayloadTooLarge(too_large_message(self.limit))
        if not boundary or len(boundary) > MAX_BOUNDARY:
            raise _malformed(
                gettext("the boundary must be 1 to %(max)s characters long") % {"max": MAX_BOUNDARY}
            )
        encoding = encoding or settings.DEFAULT_CHARSET
        self.post.encoding = encoding
        raw = boundary.encode("ascii") if isinstance(boundary, str) else boundary
        try:
            complete = self._parse(input_data, content_length, raw, encoding)
        except multipart.MultipartError as exc:
            self._discard()
            message = str(exc.args[0])
            known = _FRAMING_ERRORS.get(message)
            what = str(known) % {"limit": MAX_HEADER_LINE} if known is not None else message
            raise _malformed(what) from exc
        except BaseException:
            self._discard()
            raise
        if not complete:
            self.interrupted = True
            self._discard()
            return QueryDict(encoding=encoding), MultiValueDict()
        self.post._mutable = False
        return self.post, self.files

    def _parse(self, stream: Any, length: int, boundary: bytes, encoding: str) -> bool:
        """Feed the body to the parser; False when it ended before the closing boundary."""
        parser = multipart.PushMultipartParser(boundary, max_header_size=MAX_HEADER_LINE)
        unpad = _Unpadder(boundary)
        left, block = length, b"\r\n"  # so the first boundary is framed like all the others
        while block:
            if data := unpad(block):
                for event in parser.parse(data):
                    self._event(event, encoding)
            block = stream.read(min(self.block_size, left)) if left > 0 else b""
            left -= len(block)
        try:
            parser.close()
        except multipart.ParserError:
            return False
        return True

    def _event(self, event: multipart.MultipartSegment | bytes | None, encoding: str) -> None:
        """Act on one parser event: a part's headers, a piece of its body, or its end."""
        if isinstance(event, multipart.MultipartSegment):
            self._start_part(event)
        elif event is None:  # the end of the part
            if self.value is not None:
                text = force_str(b"".join(self.value), encoding, errors="replace")
                self.post.appendlist(self.name, text)
            elif self.hasher is not None:
                self.files.appendlist(self.name, self._complete())
            self.value = None
        elif self.hasher is not None:
            self._receive(event)
        elif self.value is not None:
            self.field_bytes += len(event)
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if limit is not None and self.field_bytes > limit:
                raise UploadRejected(
                    gettext(
                        "The form fields are larger than %(limit)s bytes (the form field "
                        "%(field)r)."
                    )
                    % {"limit": limit, "field": self.name},
                    status=413,
                )
            self.value.append(event)
        # else the body of a file input left empty: skipped, like Django does

    def _start_part(self, part: multipart.MultipartSegment) -> None:
        """Check a part's headers (what the parser leaves to us) and get ready for its body."""
        self.parts += 1
        max_fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        if max_fields is not None and self.parts > max_fields:
            raise UploadRejected(
                gettext("Too many form fields (more than %(max_fields)s).")
                % {"max_fields": max_fields}
            )
        self.name = str(part.name or "").strip()
        if not self.name:
            raise _malformed(gettext("a part's Content-Disposition is not form-data with a name"))
        encoded = str(part.header("Content-Transfer-Encoding", "")).strip().lower()
        if encoded not in _PLAIN_ENCODINGS:
            raise _malformed(
                gettext(
                    "Content-Transfer-Encoding %(encoding)r is not supported; send the bytes as "
                    "they are"
                )
                % {"encoding": encoded}
            )
        if part.filename is None:
            self.value = []
            self.field_bytes += len(self.name) + 2
            return
        file_name = sanitize_file_name(str(part.filename))
        if not file_name:
            return  # a file input left empty
        if self.name != FILE_FIELD or self.file is not None:
            raise UploadRejected(
                gettext(
                    "Send exactly one file, in the form field %(expected)r (got a file in "
                    "%(field)r)."
                )
                % {"expected": FILE_FIELD, "field": self.name}
            )
        temp_dir = settings.PORTAL_UPLOAD_TEMP_DIR
        os.makedirs(temp_dir, exist_ok=True)
        self.file = HashedUploadedFile(file_name, part.content_type, part.charset, temp_dir)
        self.hasher = _Hasher()

    def _receive(self, data: bytes) -> None:
        """Count a piece of the file against the limit, hash it and write it."""
        assert self.file is not None and self.hasher is not None  # noqa: S101 - file part
        self.received += len(data)
        if self.received > self.limit:
            raise PayloadTooLarge(too_large_message(self.limit))
        self.hasher.update(data)
        view, fd = memoryview(data), self.file.fileno()
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            if is_disk_full(exc):  # the caller's _discard removes the partial file
                raise InsufficientStorage() from exc
            raise

    def _complete(self) -> HashedUploadedFile:
        assert self.file is not None and self.hasher is not None  # noqa: S101 - file part
        self.file.sha256 = self.hasher.hexdigest()
        self.hasher = None
        self.file.seek(0)
        self.file.size = self.received
        return self.file

    def _discard(self) -> None:
        if self.hasher is not None:
            self.hasher.hexdigest()  # stops its thread
            self.hasher = None
        if self.file is not None:
            self.file.close()  # a NamedTemporaryFile: closing removes it
            self.file = None


class _Unpadder:
    """Cut out the transport padding (spaces, tabs) that RFC 2046 allows after a boundary.

    The parser refuses it. A block without padding is passed on as it is; the end of a block
    that may be the start of a boundary waits for the next block (at the end of the body it
    cannot complete the body).
    """

    def __init__(self, boundary: bytes) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.held = b""

    def __call__(self, block: bytes) -> bytes:
        data, self.held = self.held + block, b""
        delimiter, pieces, start, pos = self.delimiter, [], 0, 0
        while (found := data.find(delimiter, pos)) >= 0:
            pos = found + len(delimiter)
            after = data[pos : pos + MAX_PADDING + 1]
            padding = len(after) - len(after.lstrip(b" \t"))
            if padding > MAX_PADDING:
                raise _malformed(
                    gettext("a boundary line is longer than %(max)s bytes") % {"max": MAX_PADDING}
                )
            if pos + padding == len(data):  # the padding may go on in the next block
                self.held, data = data[found:], data[:found]
                break
            if padding:
                pieces.append(data[start:pos])
                pos = start = pos + padding
        else:
            cut = data.rfind(b"\r", max(pos, len(data) - len(delimiter) + 1))
            if cut >= 0 and delimiter.startswith(data[cut:]):
                self.held, data = data[cut:], data[:cut]
        return b"".join([*pieces, data[start:]]) if pieces else data


class _Hasher:
    """sha256 on a second thread, fed through a queue of a few blocks (memory stays flat).

    hashlib releases the GIL on large buffers, so hashing one block overlaps with reading,
    parsing and writing the next ones instead of adding to them.
    """

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self.thread = threading.Thread(target=self._run, name="upload-hasher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (data := self.queue.get()) is not None:
            self.sha256.update(data)

    def update(self, data: bytes) -> None:
        self.queue.put(data)

    def hexdigest(self) -> str:
        """Wait until the queued blocks are hashed; the digest (the thread ends)."""
        self.queue.put(None)
        self.thread.join()
        return self.sha256.hexdigest()


def install_upload_handler(request: Any) -> BinaryUploadHandler:
    """Make `request` parse its body with a fresh BinaryUploadHandler (before it is read)."""
    handler = BinaryUploadHandler(request)
    request.upload_handlers = [handler]
    return handler
