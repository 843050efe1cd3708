"""OpenAI Files use cases (``/v1/files``): what the HTTP routes call. No SQL and no HTTP.

Two kinds of file share the API: uploads, whose bytes the store keeps, and the output and
error files of OpenAI batches, whose rows the batch layer adds and whose bytes it renders
from the batch's stored outcomes when read (:class:`GeneratedContent`). A file past its
``expires_at`` is treated as deleted everywhere here, until the maintenance sweep removes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from batchyard import ids
from batchyard.errors import ApiError, StoreError
from batchyard.protocol.openai_files import (
    BATCH_FILE_SECONDS,
    FileDeleted,
    FileList,
    FileObject,
    parse_upload_fields,
)
from batchyard.service.batches import Caller
from batchyard.store.protocols import FileStore
from batchyard.store.records import FileRecord, NewFile
from batchyard.timeutil import MICROS_PER_SECOND, now_us


class GeneratedContent(Protocol):
    """Renders the files batches generate (``FileRecord.batch_seq`` set): the batch layer's
    side of the Files API."""

    def content(self, record: FileRecord) -> AsyncIterator[bytes]:
        """The file's bytes, streamed (never whole in memory)."""
        ...

    async def size(self, record: FileRecord) -> int:
        """What :meth:`content` adds up to; computed once per file and then stored."""
        ...


@dataclass(frozen=True)
class FileContent:
    """A file's bytes as they stream out; ``size`` when known before the first byte."""

    chunks: AsyncIterator[bytes]
    size: int | None


class FileService:
    def __init__(self, store: FileStore, generated: GeneratedContent | None = None) -> None:
        self._store = store
        #: ``None`` until a batch layer renders generated files: their content is then a 404.
        self._generated = generated

    async def upload(
        self,
        caller: Caller,
        fields: Mapping[str, str],
        filename: str | None,
        content: AsyncIterator[bytes],
    ) -> FileObject:
        """Check the form, then store the file and all its content in one step.

        ``filename`` is ``None`` when the form has no ``file`` part. Nothing is stored if a
        field is wrong; ``content`` is read only once they are all right.
        """
        if filename is None:
            raise ApiError(
                "invalid_request_error",
                "file: this field is required (a form part with a filename)",
                param="file",
            )
        checked = parse_upload_fields(fields)
        seconds = checked.expires_after
        if seconds is None and checked.purpose == "batch":
            seconds = BATCH_FILE_SECONDS
        created_at = now_us()
        new = NewFile(
            id=ids.file_id(),
            workspace_id=caller.workspace_id,
            filename=filename,
            purpose=checked.purpose,
            created_at=created_at,
            expires_at=None if seconds is None else created_at + seconds * MICROS_PER_SECOND,
        )
        return _wire(await self._store.create_file(new, content))

    async def retrieve(self, caller: Caller, file_id: str) -> FileObject:
        record = await self.find(caller.workspace_id, file_id)
        return _wire(await self._sized(record))

    async def list(
        self,
        caller: Caller,
        *,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
        purpose: str | None,
    ) -> FileList:
        """A page of the workspace's live files; expired ones are skipped and the page
        filled up from beyond them, so a page is short only at the end of the list."""
        now = now_us()
        live: list[FileRecord] = []
        cursor = after
        has_more = True
        while has_more and len(live) < limit:
            page = await self._store.list_files(
                caller.workspace_id,
                purpose=purpose,
                after=cursor,
                limit=limit - len(live),
                order=order,
            )
            if page is None:
                raise ApiError(
                    "invalid_request_error",
                    f"after: no File object with id {cursor!r}",
                    param="after",
                )
            live += [record for record in page.files if not _expired(record, now)]
            has_more = page.has_more
            cursor = page.files[-1].id if page.files else cursor
        data = [_wire(await self._sized(record)) for record in live]
        return FileList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )

    async def delete(self, caller: Caller, file_id: str) -> FileDeleted:
        await self.find(caller.workspace_id, file_id)  # an expired file is already gone
        if await self._store.delete_file(caller.workspace_id, file_id) is None:
            raise file_not_found(file_id)
        return FileDeleted(id=file_id)

    async def content(self, caller: Caller, file_id: str) -> FileContent:
        record = await self.find(caller.workspace_id, file_id)
        if record.batch_seq is None:
            return FileContent(self._uploaded(record), size=record.bytes)
        if self._generated is None:
            raise file_not_found(file_id)
        return FileContent(self._generated.content(record), size=None)

    async def find(self, workspace_id: int, file_id: str, *, param: str = "id") -> FileRecord:
        """The live file ``file_id`` of the workspace, else a 404 naming ``param`` (the batch
        layer names its ``input_file_id``)."""
        record = await self._store.get_file(workspace_id, file_id)
        if record is None or _expired(record, now_us()):
            raise file_not_found(file_id, param=param)
        return record

    async def _uploaded(self, record: FileRecord) -> AsyncIterator[bytes]:
        """The stored chunks; a file deleted (or swept) mid-download breaks the stream off
        with an error instead of ending it cleanly, so a cut file never looks complete."""
        sent = 0
        async for chunk in self._store.iter_content(record.id):
            sent += len(chunk)
            yield chunk
        if sent != record.bytes:
            raise StoreError(f"file {record.id} was deleted during the download")

    async def _sized(self, record: FileRecord) -> FileRecord:
        """A generated file with its size, computed (and stored) on first need."""
        if record.bytes is not None or self._generated is None:
            return record
        size = await self._generated.size(record)
        await self._store.set_file_bytes(record.id, size)
        return replace(record, bytes=size)


def file_not_found(file_id: str, *, param: str = "id") -> ApiError:
    """OpenAI's answer for a file that does not exist (or is another workspace's)."""
    return ApiError("not_found_error", f"No such File object: {file_id}", param=param)


def _expired(record: FileRecord, now: int) -> bool:
    return record.expires_at is not None and record.expires_at <= now


def _wire(record: FileRecord) -> FileObject:
    return FileObject(
        id=record.id,
        # A generated file's size is unknown only while no renderer is wired in.
        bytes=record.bytes or 0,
        created_at=record.created_at // MICROS_PER_SECOND,
        filename=record.filename,
        purpose=record.purpose,
        status=record.status,
        expires_at=None if record.expires_at is None else record.expires_at // MICROS_PER_SECOND,
    )
