"""OpenAI Batch use cases (``/v1/batches``): what the HTTP routes call. No SQL, no HTTP.

An OpenAI batch is a batch of the same queue as an Anthropic one; what differs is kept in
:class:`~batchyard.store.records.OpenAIBatch` and in how it is shown:

* **Create** reads the input file from the file store a chunk at a time, checks each line's
  envelope (:class:`~batchyard.protocol.openai_batches.InputFileReader`) and stores the batch
  and all its requests in one transaction, each ``body`` verbatim as the request's params.
  A file with bad lines makes a batch that is ``failed`` from the start, with every bad line
  in ``errors`` and no requests: nothing half-created, and the caller sees why.
* **Status**: OpenAI's machine read off ours: ``in_progress``; ``cancelling`` while
  canceling; once ended ``cancelled`` (it was canceled), ``expired`` (requests expired) or
  ``completed``. Validation and finalizing take no time of their own here: create answers
  after validating, and results are rendered when read, so a batch is never seen
  ``validating`` or ``finalizing`` (``finalizing_at`` is its end, as ``completed_at``).
* **Result files** appear when the batch has ended: an output file if any request succeeded,
  an error file if any failed, was canceled or expired. They are file rows without content
  (:meth:`~batchyard.store.protocols.FileStore.add_generated_file`), rendered from the stored
  outcomes whenever they are read (this class is the file service's
  :class:`~batchyard.service.files.GeneratedContent`).
* ``request_counts``: ``completed`` the succeeded requests, ``failed`` those in the error
  file (errored, canceled, expired).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from batchyard import ids
from batchyard.config import Settings
from batchyard.errors import ApiError, QueueFull, StoreError, invalid_request
from batchyard.protocol.openai_batches import (
    Batch,
    BatchCreate,
    BatchPage,
    BatchRequestCounts,
    BatchStatus,
    CreateError,
    FilePart,
    InputFileReader,
    decode_errors,
    decode_metadata,
    encode_errors,
    encode_metadata,
    parse_create,
    result_lines,
    usage,
)
from batchyard.service.batches import Caller, queue_full, queue_limits
from batchyard.service.files import file_not_found
from batchyard.store.protocols import BatchStore, FileStore
from batchyard.store.records import (
    BatchRecord,
    FileRecord,
    NewBatch,
    NewFile,
    NewRequest,
    OpenAIBatch,
)
from batchyard.timeutil import MICROS_PER_SECOND, now_us

_UNFINISHED = frozenset({"queued", "running", "submitted"})
_PARTS: tuple[FilePart, ...] = ("output", "error")


class OpenAIBatchService:
    def __init__(self, store: BatchStore, files: FileStore, settings: Settings) -> None:
        self._store = store
        self._files = files
        self._settings = settings

    async def create(self, caller: Caller, body: bytes) -> Batch:
        try:
            create = parse_create(body)
        except CreateError as exc:
            raise invalid_request(str(exc)) from None
        reader = await self._read_input(caller, create)
        errors = reader.finish()
        created_at = now_us()
        models = {line.model for line in reader.lines}
        openai = OpenAIBatch(
            endpoint=create.endpoint,
            input_file_id=create.input_file_id,
            completion_window=create.completion_window,
            metadata=encode_metadata(create.metadata),
            model=models.pop() if len(models) == 1 else None,
            errors=encode_errors(errors) if errors else None,
            output_expires_seconds=create.output_expires_after.seconds
            if create.output_expires_after
            else None,
        )
        items = (
            []
            if errors
            else [NewRequest(line.custom_id, line.model, line.body) for line in reader.lines]
        )
        new = NewBatch(
            id=ids.openai_batch_id(),
            workspace_id=caller.workspace_id,
            created_at=created_at,
            expires_at=created_at + _micros(self._settings.expiry_seconds),
            archives_at=created_at + _micros(self._settings.retention_seconds),
            openai=openai,
            priority=create.priority,
            queue_limits=queue_limits(self._settings, items),
        )
        try:
            record = await self._store.create_batch(new, items)
        except QueueFull as exc:
            raise queue_full(exc) from None
        return await self._wire(record)

    async def _read_input(self, caller: Caller, create: BatchCreate) -> InputFileReader:
        file = await self._files.get_file(caller.workspace_id, create.input_file_id)
        if file is None or (file.expires_at is not None and file.expires_at <= now_us()):
            raise file_not_found(create.input_file_id, param="input_file_id")
        if file.purpose != "batch" or file.batch_seq is not None:
            raise invalid_request(
                f"input_file_id: file {file.id} has purpose {file.purpose!r}; a batch's input "
                "file must be uploaded with purpose 'batch'"
            )
        reader = InputFileReader(
            endpoint=create.endpoint, max_lines=self._settings.max_openai_batch_requests
        )
        async for chunk in self._files.iter_content(file.id):
            reader.feed(chunk)
        return reader

    async def retrieve(self, caller: Caller, batch_id: str) -> Batch:
        return await self._wire(await self._find(caller, batch_id))

    async def list(self, caller: Caller, *, after: str | None, limit: int) -> BatchPage:
        page = await self._store.list_batches(
            caller.workspace_id, limit=limit, after_id=after, before_id=None, openai=True
        )
        if page is None:
            raise invalid_request(f"after: no batch with id {after!r}")
        data = [await self._wire(record) for record in page.batches]
        return BatchPage(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=page.has_more,
        )

    async def cancel(self, caller: Caller, batch_id: str) -> Batch:
        await self._find(caller, batch_id)
        record = await self._store.cancel_batch(caller.workspace_id, batch_id, now_us())
        if record is None:
            raise _not_found(batch_id)
        return await self._wire(record)

    async def _find(self, caller: Caller, batch_id: str) -> BatchRecord:
        record = await self._store.get_batch(caller.workspace_id, batch_id)
        if record is None or record.openai is None:
            raise _not_found(batch_id)
        return record

    # ----------------------------------------------------------------- result files

    async def content(self, file: FileRecord) -> AsyncIterator[bytes]:
        """The JSONL of a result file, rendered page by page from the stored outcomes; broken
        off with an error if the batch was archived meanwhile (its requests may be gone)."""
        record = await self._batch_of(file)
        part: FilePart = "output" if file.batch_part == "output" else "error"
        created = (record.ended_at or record.created_at) // MICROS_PER_SECOND
        async for page in self._store.iter_outcomes(record.seq):
            finished = (
                (stored.custom_id, stored.state, stored.outcome)
                for stored in page
                if stored.state not in _UNFINISHED
            )
            lines = list(result_lines(record.id, created, finished, part))
            if lines:
                yield b"\n".join(lines) + b"\n"
        if now_us() >= record.archives_at:
            raise StoreError(f"the results in {file.id} were archived during the download")

    async def size(self, file: FileRecord) -> int:
        return sum([len(chunk) async for chunk in self.content(file)])

    async def _batch_of(self, file: FileRecord) -> BatchRecord:
        """The batch a result file belongs to: its name is ``<batch id>_<part>.jsonl``."""
        batch_id = file.filename.rpartition("_")[0]
        record = await self._store.get_batch(file.workspace_id, batch_id)
        if record is None or record.seq != file.batch_seq:
            raise file_not_found(file.id)
        if now_us() >= record.archives_at:
            raise ApiError(
                "not_found_error",
                f"The results in {file.id} were archived and are no longer available",
                param="id",
            )
        return record

    async def _result_files(self, record: BatchRecord) -> dict[FilePart, str | None]:
        """The ids of an ended batch's result files: made on first sight and recorded on the
        batch, so they never change and a file deleted later is not made again."""
        openai = record.openai
        assert openai is not None
        if openai.files_made:
            return {"output": openai.output_file_id, "error": openai.error_file_id}
        if record.status != "ended" or record.ended_at is None:
            return {}
        wanted = {"output": record.succeeded > 0, "error": record.total > record.succeeded}
        seconds = openai.output_expires_seconds
        found: dict[FilePart, str | None] = {"output": None, "error": None}
        for part in _PARTS:
            if not wanted[part]:
                continue
            new = NewFile(
                id=ids.file_id(),
                workspace_id=record.workspace_id,
                filename=f"{record.id}_{part}.jsonl",
                purpose="batch_output",
                created_at=record.ended_at,
                expires_at=None if seconds is None else record.ended_at + _micros(seconds),
            )
            # Made once per (batch, part) however many readers race here.
            found[part] = (await self._files.add_generated_file(new, record.seq, part)).id
        await self._store.record_result_files(record.seq, found["output"], found["error"], now_us())
        return found

    # ----------------------------------------------------------------- wire

    async def _wire(self, record: BatchRecord) -> Batch:
        openai = record.openai
        assert openai is not None
        files = await self._result_files(record) if openai.errors is None else {}
        status, times = openai_status(record)
        ended_tokens = None
        if record.status == "ended" and openai.errors is None:
            input_tokens, output_tokens = await self._store.token_totals(record.seq)
            ended_tokens = usage(input_tokens, output_tokens)
        return Batch(
            id=record.id,
            endpoint=openai.endpoint,
            errors=decode_errors(openai.errors) if openai.errors else None,
            input_file_id=openai.input_file_id,
            completion_window=openai.completion_window,
            status=status,
            output_file_id=files.get("output"),
            error_file_id=files.get("error"),
            created_at=_seconds(record.created_at),
            in_progress_at=times.get("in_progress"),
            expires_at=_seconds(record.expires_at),
            finalizing_at=times.get("finalizing"),
            completed_at=times.get("completed"),
            failed_at=times.get("failed"),
            expired_at=times.get("expired"),
            cancelling_at=times.get("cancelling"),
            cancelled_at=times.get("cancelled"),
            request_counts=BatchRequestCounts(
                total=record.total,
                completed=record.succeeded,
                failed=record.errored + record.canceled + record.expired,
            ),
            metadata=decode_metadata(openai.metadata),
            model=openai.model,
            usage=ended_tokens,
        )


def openai_status(record: BatchRecord) -> tuple[BatchStatus, dict[str, int]]:
    """OpenAI's status of a batch and the times of the states it went through."""
    assert record.openai is not None
    created = _seconds(record.created_at)
    if record.openai.errors is not None:
        return "failed", {"failed": created}
    times = {"in_progress": created}
    if record.cancel_initiated_at is not None:
        times["cancelling"] = _seconds(record.cancel_initiated_at)
    if record.status != "ended" or record.ended_at is None:
        return ("cancelling" if record.status == "canceling" else "in_progress"), times
    ended = _seconds(record.ended_at)
    if record.cancel_initiated_at is not None:
        times["cancelled"] = ended
        return "cancelled", times
    if record.expired:
        times["expired"] = ended
        return "expired", times
    times["finalizing"] = times["completed"] = ended
    return "completed", times


def _not_found(batch_id: str) -> ApiError:
    return ApiError("not_found_error", f"No batch found with id {batch_id!r}", param="batch_id")


def _seconds(micros: int) -> int:
    return micros // MICROS_PER_SECOND


def _micros(seconds: float) -> int:
    return int(seconds * MICROS_PER_SECOND)
