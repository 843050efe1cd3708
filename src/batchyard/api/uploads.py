"""Reading a multipart upload (``POST /v1/files``) as it streams in, with a size cap.

The ``file`` part goes to a spooled temporary file (in memory up to 1 MiB, then on disk), so
a 200 MB upload never sits in memory, and is refused with a 413 as soon as it passes the
cap, not after it all arrived (Starlette's ``request.form()`` has no cap on file parts).
The store is fed from the spool only once the whole form is read and checked: its fields
may come after the file (the Node SDK sends ``file`` first), a bad ``purpose`` then stores
nothing, and a slow client never holds a database transaction (on SQLite, the one writer)
open while it sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from tempfile import SpooledTemporaryFile
from typing import TYPE_CHECKING

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from batchyard.errors import ApiError, invalid_request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

#: Spool in memory up to this, then on disk; also the size of each read back.
_SPOOL_BYTES = 1 << 20
#: Caps on the parts besides the file: the form has three small fields.
_FIELD_BYTES = 64 * 1024
_MAX_PARTS = 16
#: Room for the form around the file (boundaries, part headers, fields) in a declared size.
_FORM_BYTES = _MAX_PARTS * _FIELD_BYTES
MAX_FILENAME_CHARS = 1000


def file_too_large(limit: int) -> ApiError:
    return ApiError(
        "request_too_large",
        f"file: the file exceeds the maximum allowed size of {limit} bytes",
        param="file",
    )


class Upload:
    """A parsed form: its text fields, and the ``file`` part's name and spooled bytes."""

    def __init__(self, spool: SpooledTemporaryFile[bytes], max_file_bytes: int) -> None:
        self.fields: dict[str, str] = {}
        #: ``None`` when the form has no ``file`` part with a filename.
        self.filename: str | None = None
        self.size = 0
        self._max_file_bytes = max_file_bytes
        self._spool = spool
        self._parts = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._name = ""
        self._in_file = False
        self._value = bytearray()
        self.complete = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes from the spool, 1 MiB at a time (read off the event loop: once
        spooled to disk, a read may wait on it)."""
        await run_in_threadpool(self._spool.seek, 0)
        while chunk := await run_in_threadpool(self._spool.read, _SPOOL_BYTES):
            yield chunk

    # ------------------------------------------------------------------ parser callbacks

    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > _MAX_PARTS:
            raise invalid_request(f"the form has more than {_MAX_PARTS} parts")
        self._disposition = b""
        self._value.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        if len(self._header_value) > _FIELD_BYTES:
            raise invalid_request(f"a part header is longer than {_FIELD_BYTES} bytes")

    def on_header_end(self) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = _unescape(options.get(b"filename", b"").decode("utf-8", "replace"))
        self._in_file = self._name == "file" and filename != ""
        if not self._in_file:
            return
        if self.filename is not None:
            raise ApiError("invalid_request_error", "file: send one file per upload", param="file")
        if len(filename) > MAX_FILENAME_CHARS:
            raise ApiError(
                "invalid_request_error",
                f"file: the filename is longer than {MAX_FILENAME_CHARS} characters",
                param="file",
            )
        self.filename = filename

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.size += end - start
            if self.size > self._max_file_bytes:
                raise file_too_large(self._max_file_bytes)
            self._spool.write(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > _FIELD_BYTES:
            raise ApiError(
                "invalid_request_error",
                f"{self._name}: longer than {_FIELD_BYTES} bytes",
                param=self._name,
            )

    def on_part_end(self) -> None:
        if not self._in_file:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.complete = True


@asynccontextmanager
async def read_upload(request: Request, max_file_bytes: int) -> AsyncIterator[Upload]:
    """The whole form, its file spooled until the block ends.

    Raises a 413 naming ``file`` as soon as the file part (or a declared ``Content-Length``
    beyond any form around such a file) exceeds ``max_file_bytes``.
    """
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise invalid_request("Content-Type must be multipart/form-data (with a boundary)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_file_bytes + _FORM_BYTES:
        raise file_too_large(max_file_bytes)
    with SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        upload = Upload(spool, max_file_bytes)
        callbacks: MultipartCallbacks = {
            "on_part_begin": upload.on_part_begin,
            "on_header_field": upload.on_header_field,
            "on_header_value": upload.on_header_value,
            "on_header_end": upload.on_header_end,
            "on_headers_finished": upload.on_headers_finished,
            "on_part_data": upload.on_part_data,
            "on_part_end": upload.on_part_end,
            "on_end": upload.on_end,
        }
        parser = MultipartParser(boundary, callbacks)
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except ClientDisconnect:
            # Nobody is left to answer; an ApiError keeps this out of the error log.
            raise ApiError("invalid_request_error", "client disconnected during upload") from None
        except MultipartParseError as exc:
            raise invalid_request(f"the multipart body is malformed: {exc}") from None
        if not upload.complete:
            # Cut off before its closing boundary: the last part may be incomplete.
            raise invalid_request("the multipart body ends before its closing boundary")
        yield upload


#: How browsers and HTTP clients escape a filename in a multipart header (the WHATWG HTML
#: standard's form encoding; httpx, and so both official SDKs, do the same).
_FILENAME_ESCAPES = {"%22": '"', "%0A": "\n", "%0D": "\r"}


def _unescape(filename: str) -> str:
    for escaped, character in _FILENAME_ESCAPES.items():
        filename = filename.replace(escaped, character)
    return filename
