"""Message Batches use cases: what the HTTP routes call. No SQL and no HTTP in here."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from batchyard import ids
from batchyard.config import Settings
from batchyard.errors import (
    ApiError,
    IdempotencyKeyTaken,
    QueueFull,
    StoreError,
    invalid_request,
    not_found,
)
from batchyard.protocol.batches import (
    DeletedMessageBatch,
    MessageBatch,
    MessageBatchPage,
    RequestCounts,
    parse_create_body,
    result_line,
)
from batchyard.store.protocols import BatchStore
from batchyard.store.records import BatchRecord, Headers, NewBatch, NewRequest, QueueLimit
from batchyard.timeutil import MICROS_PER_SECOND, now_us, optional_rfc3339, rfc3339

_UNFINISHED = frozenset({"queued", "running", "submitted"})


@dataclass(frozen=True)
class Caller:
    """Who is asking: every batch lookup is scoped to this workspace."""

    workspace_id: int
    #: Base for absolute ``results_url`` values, e.g. ``http://127.0.0.1:8000``.
    public_url: str


class BatchService:
    def __init__(self, store: BatchStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def create(
        self,
        caller: Caller,
        body: bytes,
        *,
        idempotency_key: str | None = None,
        headers: Headers = (),
    ) -> MessageBatch:
        """Validate the envelope, then persist the batch and all requests atomically.

        ``headers`` (the call's ``anthropic-*`` headers, e.g. ``anthropic-beta``) are kept
        with the batch: a relay forwards them upstream with each of its requests, as it
        does for a sync call.

        With an ``Idempotency-Key`` (a batchyard extension; the SDKs send one only via
        ``extra_headers``), a replay of the same create returns the batch the first call
        made, so a retried create after a lost response never makes a second batch.
        """
        digest = hashlib.sha256(body).hexdigest() if idempotency_key else None
        if idempotency_key and (earlier := await self._replayed(caller, idempotency_key, digest)):
            return earlier
        parsed = parse_create_body(body, max_requests=self._settings.max_requests_per_batch)
        items = [NewRequest(*request) for request in parsed.requests]
        created_at = now_us()
        new = NewBatch(
            id=ids.batch_id(),
            workspace_id=caller.workspace_id,
            created_at=created_at,
            expires_at=created_at + _micros(self._settings.expiry_seconds),
            archives_at=created_at + _micros(self._settings.retention_seconds),
            idempotency_key=idempotency_key,
            body_digest=digest,
            headers=headers,
            priority=parsed.priority,
            queue_limits=queue_limits(self._settings, items),
        )
        try:
            record = await self._store.create_batch(new, items)
        except QueueFull as exc:
            raise queue_full(exc) from None
        except IdempotencyKeyTaken:
            # A concurrent create with the same key won the race: answer with its batch.
            if idempotency_key and (
                earlier := await self._replayed(caller, idempotency_key, digest)
            ):
                return earlier
            raise
        return self._wire(record, caller)

    async def _replayed(
        self, caller: Caller, idempotency_key: str, digest: str | None
    ) -> MessageBatch | None:
        found = await self._store.find_idempotent(caller.workspace_id, idempotency_key)
        if found is None:
            return None
        record, earlier_digest = found
        if earlier_digest != digest:
            raise invalid_request(
                "Idempotency-Key: this key was already used for a different request body "
                f"(Message Batch {record.id})"
            )
        return self._wire(record, caller)

    async def retrieve(self, caller: Caller, batch_id: str) -> MessageBatch:
        return self._wire(await self._find(caller, batch_id), caller)

    async def list(
        self, caller: Caller, *, limit: int, after_id: str | None, before_id: str | None
    ) -> MessageBatchPage:
        if after_id is not None and before_id is not None:
            raise invalid_request("after_id and before_id cannot be used together")
        page = await self._store.list_batches(
            caller.workspace_id, limit=limit, after_id=after_id, before_id=before_id
        )
        if page is None:
            cursor = "after_id" if after_id is not None else "before_id"
            raise invalid_request(f"{cursor}: no Message Batch with id {after_id or before_id!r}")
        data = [self._wire(record, caller) for record in page.batches]
        return MessageBatchPage(
            data=data,
            has_more=page.has_more,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        )

    async def cancel(self, caller: Caller, batch_id: str) -> MessageBatch:
        await self._find(caller, batch_id)
        record = await self._store.cancel_batch(caller.workspace_id, batch_id, now_us())
        if record is None:
            raise _batch_not_found(batch_id)
        return self._wire(record, caller)

    async def delete(self, caller: Caller, batch_id: str) -> DeletedMessageBatch:
        await self._find(caller, batch_id)
        record = await self._store.delete_batch(caller.workspace_id, batch_id)
        if record is None:
            raise _batch_not_found(batch_id)
        if record.status != "ended":
            raise invalid_request(
                f"Message Batch {batch_id} is still processing; cancel it and wait for it "
                "to end before deleting it"
            )
        return DeletedMessageBatch(id=record.id)

    async def results(
        self, caller: Caller, batch_id: str, *, partial: bool = False
    ) -> AsyncIterator[bytes]:
        """Check the batch can be downloaded now, then return its JSONL body as chunks.

        ``partial`` (a batchyard extension, ``?partial=true``) allows downloading while the
        batch runs: only requests that already have a result are included.
        """
        record = await self._find(caller, batch_id)
        if record.status != "ended" and not partial:
            raise invalid_request(
                f"Message Batch {batch_id} has not finished processing; results are not "
                "available until processing_status is 'ended' (or ask for the results so far "
                "with ?partial=true)"
            )
        if now_us() >= record.archives_at:
            raise not_found(
                f"The results of Message Batch {batch_id} were archived and are no longer "
                "available for download"
            )
        return self._jsonl(record)

    async def _jsonl(self, record: BatchRecord) -> AsyncIterator[bytes]:
        """Anthropic's JSONL, rendered page by page from the stored outcomes.

        If the outcomes go away mid-download (the batch was deleted, or the retention purge
        ran: it may have once the batch is past ``archives_at``), the stream is broken off
        with an error rather than ended cleanly, so the client cannot take a cut file for a
        complete one.
        """
        async for page in self._store.iter_outcomes(record.seq):
            lines = []
            for stored in page:
                if stored.state in _UNFINISHED:
                    continue
                lines.append(result_line(stored.custom_id, stored.state, stored.outcome))
            if lines:  # an empty chunk would put a blank line in the JSONL, which SDKs reject
                yield b"\n".join(lines) + b"\n"
        if await self._store.get_batch(record.workspace_id, record.id) is None:
            raise StoreError("the batch was deleted during the download")
        if now_us() >= record.archives_at:
            raise StoreError("the batch's results were archived during the download")

    async def _find(self, caller: Caller, batch_id: str) -> BatchRecord:
        record = await self._store.get_batch(caller.workspace_id, batch_id)
        if record is None or record.openai is not None:  # an OpenAI batch: not of this API
            raise _batch_not_found(batch_id)
        return record

    def _wire(self, record: BatchRecord, caller: Caller) -> MessageBatch:
        return batch_to_wire(record, caller.public_url)


def batch_to_wire(record: BatchRecord, public_url: str) -> MessageBatch:
    """The wire ``MessageBatch``; ``results_url`` is absolute when ``public_url`` is."""
    ended = record.status == "ended"
    archived = now_us() >= record.archives_at
    return MessageBatch(
        id=record.id,
        processing_status=record.status,
        request_counts=RequestCounts(
            processing=record.processing,
            succeeded=record.succeeded,
            errored=record.errored,
            canceled=record.canceled,
            expired=record.expired,
        ),
        created_at=rfc3339(record.created_at),
        expires_at=rfc3339(record.expires_at),
        ended_at=optional_rfc3339(record.ended_at),
        cancel_initiated_at=optional_rfc3339(record.cancel_initiated_at),
        archived_at=rfc3339(record.archives_at) if archived else None,
        results_url=f"{public_url}/v1/messages/batches/{record.id}/results" if ended else None,
    )


def _batch_not_found(batch_id: str) -> Exception:
    return not_found(f"No Message Batch found with id {batch_id!r}")


def _micros(seconds: float) -> int:
    return int(seconds * MICROS_PER_SECOND)


#: The ``retry-after`` of a create refused for a full queue: the SDKs wait this long before
#: their own retry, time for some of the workspace's queue to start.
QUEUE_FULL_RETRY_SECONDS = 30


def queue_limits(settings: Settings, items: Sequence[NewRequest]) -> tuple[QueueLimit, ...]:
    """The ``max_queued_per_workspace`` limits a create of ``items`` must fit under: one per
    limited model it has requests of. A batch that could never fit is a 400 (a 429 would
    have the SDKs retry it in vain)."""
    adding = Counter(item.model for item in items)
    limits = tuple(
        QueueLimit(model.name, model.names, model.max_queued_per_workspace, count)
        for model in settings.models
        if model.max_queued_per_workspace is not None
        and (count := sum(adding[name] for name in model.names))
    )
    for limit in limits:
        if limit.adding > limit.limit:
            raise invalid_request(
                f"requests: {limit.adding} requests of model {limit.model!r}, more than the "
                f"{limit.limit} a workspace may have queued for it (max_queued_per_workspace); "
                "split them into smaller batches"
            )
    return limits


def queue_full(exc: QueueFull) -> ApiError:
    """A create refused for now: 429 ``rate_limit_error`` with a ``retry-after``."""
    return ApiError("rate_limit_error", str(exc), retry_after=QUEUE_FULL_RETRY_SECONDS)
