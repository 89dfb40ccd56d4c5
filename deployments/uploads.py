"""Streaming upload of binaries: hash while writing to a temporary file, enforce the limit.

`BinaryUploadHandler` replaces Django's default upload handlers for the binary upload
(API and UI) and parses the multipart body itself (Django lets a handler's
`handle_raw_input` answer for the whole body): the body is read in large blocks into a few
reused buffers, the multipart framing is checked strictly, the small form fields go into a
QueryDict and the bytes of the file part are handed, without copies, to a second thread
that computes their sha256 and writes them to a temporary file in `PORTAL_UPLOAD_TEMP_DIR`.
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
import io
import os
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files import temp as tempfile
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, QueryDict, UnreadablePostError
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from django.utils.http import parse_header_parameters
from rest_framework import exceptions

from portal.api.errors import PayloadTooLarge

# Room for the multipart framing and the small form fields around the file.
MULTIPART_OVERHEAD = 1024 * 1024
CHUNK_SIZE = 4 * 1024 * 1024
FILE_FIELD = "file"
# Limits of the framing (the file part itself is limited by PORTAL_BINARY_MAX_BYTES).
MAX_BOUNDARY = 200
MAX_PART_HEADERS = 16 * 1024
MAX_PREAMBLE = 64 * 1024
CRLF = b"\r\n"


class UploadRejected(exceptions.APIException):
    """The upload cannot be accepted; `status_code` is the HTTP status to answer with."""

    status_code = 400
    default_code = "invalid_upload"

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status_code = status


class _Truncated(Exception):
    """The body ended before the closing boundary."""


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


def _malformed(what: str) -> UploadRejected:
    return UploadRejected(f"Malformed multipart/form-data body: {what}.")


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
    methods are never called. Under gunicorn the body is read straight from the client
    socket (see `_SocketSource`), elsewhere through the request's `read()`. After parsing,
    `interrupted` is True when the body ended before the closing boundary (FILES is empty).
    """

    chunk_size = CHUNK_SIZE
    #: Size of one read buffer, and how many of them may be in flight (one being filled,
    #: the others queued for the hashing/writing thread): bounds the memory of an upload.
    block_size = CHUNK_SIZE
    buffers = 4

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
    ) -> tuple[QueryDict, MultiValueDict]:
        if content_length > self.limit + MULTIPART_OVERHEAD:
            raise PayloadTooLarge(too_large_message(self.limit))
        if not boundary or len(boundary) > MAX_BOUNDARY:
            raise _malformed(f"the boundary must be 1 to {MAX_BOUNDARY} characters long")
        source = _socket_source(input_data, META, content_length) or _StreamSource(
            input_data, content_length
        )
        block = max(min(self.block_size, content_length + 2), 8 * (len(boundary) + 8))
        reader = _BlockReader(source, block, self.buffers)
        try:
            return self._parse(reader, boundary, encoding or settings.DEFAULT_CHARSET)
        except _Truncated:
            self.interrupted = True
            self._discard(reader)
            return QueryDict(encoding=encoding), MultiValueDict()
        except BaseException:
            self._discard(reader)
            raise
        finally:
            reader.close()

    def _parse(
        self, reader: _BlockReader, boundary: bytes, encoding: str
    ) -> tuple[QueryDict, MultiValueDict]:
        post = QueryDict(mutable=True, encoding=encoding)
        files = MultiValueDict()
        dash = b"--" + boundary
        delimiter = CRLF + dash
        max_fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        max_field_bytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        field_bytes = parts = 0
        # The preamble (usually empty) ends with the first boundary line.
        if reader.peek(len(dash)) == dash:
            reader.skip(len(dash))
        else:
            reader.read_until(delimiter, MAX_PREAMBLE, "the text before the first boundary")
        while True:
            after = reader.peek(2)
            if after == b"--":  # the closing boundary: the rest is an epilogue, ignored
                reader.drain()
                break
            if after != CRLF:
                padding = reader.read_until(CRLF, 1024, "a boundary line")
                if padding.strip(b" \t"):
                    raise _malformed("a boundary line is followed by other text")
            else:
                reader.skip(2)
            parts += 1
            if max_fields is not None and parts > max_fields:
                raise UploadRejected(f"Too many form fields (more than {max_fields}).")
            if reader.peek(2) == CRLF:
                raise _malformed("a part has no Content-Disposition header")
            head = reader.read_until(CRLF + CRLF, MAX_PART_HEADERS, "the headers of a part")
            name, filename, content_type, params, encoded = _part_headers(head, encoding)
            if encoded:
                raise _malformed(
                    f"Content-Transfer-Encoding {encoded!r} is not supported; send the "
                    "bytes as they are"
                )
            if filename is None:
                budget = None if max_field_bytes is None else max_field_bytes - field_bytes
                value = reader.read_until(delimiter, budget, f"the form field {name!r}")
                field_bytes += len(value) + len(name) + 2
                post.appendlist(name, force_str(value, encoding, errors="replace"))
                continue
            filename = sanitize_file_name(filename)
            if not filename:  # like Django: a file input left empty
                reader.stream_until(delimiter, _ignore)
                continue
            self._open_file(name, filename, content_type, params)
            reader.stream_until(delimiter, self._receive)
            files.appendlist(name, self._complete(reader))
        post._mutable = False
        return post, files

    def _open_file(
        self, field_name: str, file_name: str, content_type: str, params: dict[str, str]
    ) -> None:
        self.files_seen += 1
        if field_name != FILE_FIELD or self.files_seen > 1:
            raise UploadRejected(
                f"Send exactly one file, in the form field {FILE_FIELD!r} "
                f"(got a file in {field_name!r})."
            )
        self.field_name, self.file_name = field_name, file_name
        self.content_type, self.charset = content_type, params.get("charset")
        self.content_type_extra = params
        temp_dir = settings.PORTAL_UPLOAD_TEMP_DIR
        os.makedirs(temp_dir, exist_ok=True)
        self.file = HashedUploadedFile(file_name, content_type, self.charset, temp_dir)
        self.writer = _Writer(self.file.file.fileno(), self.hasher)

    def _receive(self, data: memoryview) -> _Writer:
        """Count `data` against the limit and queue it for hashing and writing."""
        self.received += len(data)
        if self.received > self.limit:
            raise PayloadTooLarge(too_large_message(self.limit))
        assert self.writer is not None  # noqa: S101 - started with the file
        self.writer.put(data)
        return self.writer

    def _complete(self, reader: _BlockReader) -> HashedUploadedFile:
        assert self.file is not None and self.writer is not None  # noqa: S101
        self.writer.finish()
        self.writer = None
        reader.writer_done()
        self.file.seek(0)
        self.file.size = self.received
        self.file.sha256 = self.hasher.hexdigest()
        return self.file

    def _discard(self, reader: _BlockReader | None = None) -> None:
        if self.writer is not None:
            self.writer.finish(check=False)
            self.writer = None
            if reader is not None:
                reader.writer_done()
        if self.file is not None:
            self.file.close()  # a NamedTemporaryFile: closing removes it
            self.file = None


def _ignore(data: memoryview) -> None:
    return None


def _part_headers(head: bytes, encoding: str) -> tuple[str, str | None, str, dict[str, str], str]:
    """(field name, file name or None, content type, its parameters, transfer encoding)."""
    headers: dict[str, str] = {}
    for line in head.split(CRLF):
        key, colon, value = line.partition(b":")
        if not colon or not key.strip():
            raise _malformed(f"a part header line has no 'Name:' ({line[:80]!r})")
        headers[key.strip().lower().decode("latin-1")] = value.strip().decode(
            encoding, errors="replace"
        )
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise _malformed("a part has no Content-Disposition header")
    kind, params = parse_header_parameters(disposition)
    if kind.lower() != "form-data" or not params.get("name", "").strip():
        raise _malformed(f"a part's Content-Disposition is not form-data with a name ({kind!r})")
    content_type, type_params = parse_header_parameters(headers.get("content-type", ""))
    encoded = headers.get("content-transfer-encoding", "").strip().lower()
    if encoded in {"binary", "8bit", "7bit"}:
        encoded = ""
    return params["name"].strip(), params.get("filename"), content_type, type_params, encoded


class _StreamSource:
    """`readinto` over a file-like object's `read`, never past `length` bytes."""

    def __init__(self, stream: Any, length: int) -> None:
        self.read = stream.read
        self.left = length

    def readinto(self, view: memoryview) -> int:
        size = min(len(view), self.left)
        if size <= 0:
            return 0
        data = self.read(size)
        if len(data) > size:
            raise UploadRejected("The request body stream returned more bytes than asked for.")
        view[: len(data)] = data
        self.left -= len(data)
        return len(data)


class _SocketSource:
    """`readinto` straight from gunicorn's client socket, keeping gunicorn and Django in step.

    Skips gunicorn's buffered body reader (which copies every byte three times on the way)
    and reads the body with `recv_into` into our buffers: first the body bytes gunicorn
    already holds, then from the socket, never past the request's Content-Length. Every
    byte taken is counted off gunicorn's `LengthReader` and Django's `LimitedStream`, so
    both still know where the body ends.
    """

    def __init__(self, request: Any, body: Any, length: int) -> None:
        self.request = request
        self.body = body
        self.reader = body.reader
        self.sock = self.reader.unreader.sock
        held = self.reader.unreader.buf.getvalue()
        self.held = memoryview(held[:length])
        rest = io.BytesIO()
        rest.write(held[length:])  # pipelined bytes after this body stay with gunicorn
        self.reader.unreader.buf = rest
        self.left = length
        request._read_started = True

    def readinto(self, view: memoryview) -> int:
        size = min(len(view), self.left)
        if size <= 0:
            return 0
        if self.held:
            count = min(size, len(self.held))
            view[:count] = self.held[:count]
            self.held = self.held[count:]
        else:
            try:
                count = self.sock.recv_into(view, size)
            except OSError as exc:
                self.body.failed = True
                raise UnreadablePostError(*exc.args) from exc
        self.left -= count
        self.reader.length -= count
        self.request._stream._pos += count
        return count


def _socket_source(request: Any, meta: dict[str, Any], length: int) -> _SocketSource | None:
    """A `_SocketSource` when `request` is an untouched request served by gunicorn, else None.

    Everything is checked first (class names, attributes, nothing read yet, the same length
    everywhere); any doubt means the plain `read()` path.
    """
    body = meta.get("wsgi.input")
    stream = getattr(request, "_stream", None)
    try:
        reader = body.reader  # type: ignore[union-attr]
        unreader = reader.unreader
        usable = (
            isinstance(request, HttpRequest)
            and not request._read_started
            and isinstance(stream, LimitedStream)
            and stream._pos == 0
            and getattr(stream._read, "__self__", None) is body
            and stream.limit == length
            and type(body).__module__ == "gunicorn.http.body"
            and type(body).__name__ == "Body"
            and not body.buf.getvalue()  # type: ignore[union-attr]
            and type(reader).__name__ == "LengthReader"
            and reader.length == length
            and type(unreader).__name__ == "SocketUnreader"
            and isinstance(unreader.buf, io.BytesIO)
            and isinstance(unreader.sock, socket.socket)
        )
    except AttributeError:
        return None
    return _SocketSource(request, body, length) if usable else None


class _BlockReader:
    """The body, read a block at a time into a few reused buffers.

    The bytes not yet consumed are `buffer[start:end]`. A buffer whose bytes were handed to
    the writer goes back to the pool through the writer (after it has used them).
    """

    def __init__(self, source: Any, block: int, count: int) -> None:
        self.source = source
        self.block = block
        self.pool: queue.Queue[bytearray] = queue.Queue()
        self.created = 0
        self.count = max(2, count)
        self.buffer = self._take()
        self.start = self.end = 0
        self.eof = False
        self.lent_to: _Writer | None = None  # who holds views of the current buffer

    def _take(self) -> bytearray:
        if self.pool.empty() and self.created < self.count:
            self.created += 1
            return bytearray(self.block)
        return self.pool.get()

    def _give_back(self, buffer: bytearray) -> None:
        if self.lent_to is not None:
            self.lent_to.release(buffer, self.pool)
        else:
            self.pool.put(buffer)

    def _refill(self) -> bool:
        """Move what is left to a fresh buffer and read more; False when nothing came."""
        if self.eof:
            return False
        keep = self.end - self.start
        buffer = self._take()
        buffer[:keep] = self.buffer[self.start : self.end]
        self._give_back(self.buffer)
        self.lent_to = None
        self.buffer, self.start, self.end = buffer, 0, keep
        view = memoryview(buffer)
        try:
            while self.end < len(buffer):
                count = self.source.readinto(view[self.end :])
                if not count:
                    self.eof = True
                    break
                self.end += count
        finally:
            view.release()
        return self.end > keep

    def writer_done(self) -> None:
        """The writer has finished: the current buffer is no longer lent."""
        self.lent_to = None

    def peek(self, size: int) -> bytes:
        """Up to `size` next bytes, not consumed."""
        while self.end - self.start < size and self._refill():
            pass
        return bytes(self.buffer[self.start : min(self.end, self.start + size)])

    def skip(self, size: int) -> None:
        self.start += size

    def drain(self) -> None:
        """Consume the rest of the body (the epilogue)."""
        self.start = self.end
        while self._refill():
            self.start = self.end

    def read_until(self, delimiter: bytes, cap: int | None, what: str) -> bytes:
        """The bytes before `delimiter` (which is consumed too); at most `cap` of them.

        Raises:
            UploadRejected: more than `cap` bytes come before the delimiter.
            _Truncated: the body ended first.
        """
        keep = len(delimiter) - 1
        pieces: list[bytes] = []
        size = 0
        while True:
            found = self.buffer.find(delimiter, self.start, self.end)
            stop = found if found >= 0 else max(self.start, self.end - keep)
            size += stop - self.start
            if cap is not None and size > cap:
                if what.startswith("the form field"):
                    raise UploadRejected(
                        f"The form fields are larger than {cap} bytes ({what}).", status=413
                    )
                raise _malformed(f"{what} is longer than {cap} bytes")
            pieces.append(bytes(self.buffer[self.start : stop]))
            if found >= 0:
                self.start = found + len(delimiter)
                return b"".join(pieces)
            self.start = stop
            if not self._refill():
                raise _Truncated

    def stream_until(self, delimiter: bytes, sink: Callable[[memoryview], Any]) -> None:
        """Hand the bytes before `delimiter` to `sink` as views; consume the delimiter.

        `sink` returns the writer that keeps the views (None when it does not keep them).

        Raises:
            _Truncated: the body ended first.
        """
        keep = len(delimiter) - 1
        while True:
            found = self.buffer.find(delimiter, self.start, self.end)
            stop = found if found >= 0 else max(self.start, self.end - keep)
            if stop > self.start:
                holder = sink(memoryview(self.buffer)[self.start : stop])
                if holder is not None:
                    self.lent_to = holder
            if found >= 0:
                self.start = found + len(delimiter)
                return
            self.start = stop
            if not self._refill():
                raise _Truncated

    def close(self) -> None:
        """Give the current buffer back (through the writer if it still holds views)."""
        if self.buffer is not None:
            self._give_back(self.buffer)
            self.lent_to = None


class _Writer:
    """Hash and write views of the read buffers on two more threads.

    A pipeline: the request thread reads, the hashing thread hashes each piece and passes
    it on, the writing thread writes it to the file and finally gives the read buffer back
    to the pool. hashlib and os.write release the GIL on large buffers, so the three
    overlap; the pool of read buffers bounds what is in flight.
    """

    PIECE = 1024 * 1024  # hashed, then written while it is still in the CPU cache

    def __init__(self, fd: int, hasher: Any) -> None:
        self.fd = fd
        self.hasher = hasher
        self.to_hash: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.to_write: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.alive = True
        self.threads = [
            threading.Thread(target=self._hash, name="upload-hasher", daemon=True),
            threading.Thread(target=self._write, name="upload-writer", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _hash(self) -> None:
        update, piece, forward = self.hasher.update, self.PIECE, self.to_write.put
        while (item := self.to_hash.get()) is not None:
            view, pool = item
            if pool is not None or self.error is not None:
                forward(item)  # a buffer to give back, or draining after a failure
                continue
            try:
                for offset in range(0, len(view), piece):
                    part = view[offset : offset + piece]
                    update(part)
                    forward((part, None))
            except BaseException as exc:  # reported by finish() in the request thread
                self.error = exc
        forward(None)

    def _write(self) -> None:
        write, fd = os.write, self.fd
        while (item := self.to_write.get()) is not None:
            view, pool = item
            if pool is not None:  # a buffer the reader has moved on from
                pool.put(view)
                continue
            try:
                while view and self.error is None:
                    view = view[write(fd, view) :]
            except BaseException as exc:  # reported by finish() in the request thread
                self.error = exc

    def put(self, view: memoryview) -> None:
        if self.error is not None:
            raise self.error
        self.to_hash.put((view, None))

    def release(self, buffer: bytearray, pool: queue.Queue[bytearray]) -> None:
        """Return `buffer` to `pool` once the views queued before are consumed."""
        if self.alive:
            self.to_hash.put((buffer, pool))
        else:
            pool.put(buffer)

    def finish(self, *, check: bool = True) -> None:
        if self.alive:
            self.alive = False
            self.to_hash.put(None)
            for thread in self.threads:
                thread.join()
        if check and self.error is not None:
            raise self.error


def install_upload_handler(request: Any) -> BinaryUploadHandler:
    """Make `request` parse its body with a fresh BinaryUploadHandler (before it is read)."""
    handler = BinaryUploadHandler(request)
    request.upload_handlers = [handler]
    return handler
