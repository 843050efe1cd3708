"""Batches as the API sees them: create, look up, list, cancel, delete, read outcomes.

Invariants enforced here:

* **Acknowledged means durable**: a batch and all its requests are inserted in one
  transaction; a failure leaves nothing behind.
* **Workspaces are walls**: every lookup by a batch id is scoped to the caller's workspace
  (:func:`~batchyard.store.rows.find_batch`).
* **One create per idempotency key** in a workspace: a unique constraint decides a race.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.errors import IdempotencyKeyTaken, QueueFull
from batchyard.store.database import Database
from batchyard.store.ledger import settle_queued
from batchyard.store.notices import notify_work
from batchyard.store.records import (
    BatchPage,
    BatchRecord,
    NewBatch,
    NewRequest,
    StoredOutcome,
    closing_as,
)
from batchyard.store.rows import (
    CHUNK,
    batch_by_seq,
    batch_record,
    encode_headers,
    find_batch,
    insert_many,
    select_batches,
)
from batchyard.store.tables import batches, openai_batches, outcomes, requests


class SqlBatches:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_batch(self, batch: NewBatch, items: Sequence[NewRequest]) -> BatchRecord:
        try:
            record = await self._insert(batch, items)
        except IntegrityError:
            if batch.idempotency_key is None:
                raise
            raise IdempotencyKeyTaken(batch.idempotency_key) from None
        return record

    async def _insert(self, batch: NewBatch, items: Sequence[NewRequest]) -> BatchRecord:
        async with self._db.writer.begin() as conn:
            if batch.queue_limits:
                await _check_queue_limits(conn, batch)
            seq = await conn.scalar(
                insert(batches)
                .values(
                    id=batch.id,
                    workspace_id=batch.workspace_id,
                    status="in_progress" if items else "ended",
                    total=len(items),
                    processing=len(items),
                    created_at=batch.created_at,
                    ended_at=None if items else batch.created_at,
                    expires_at=batch.expires_at,
                    archives_at=batch.archives_at,
                    idempotency_key=batch.idempotency_key,
                    body_digest=batch.body_digest,
                    headers=encode_headers(batch.headers),
                    priority=batch.priority,
                )
                .returning(batches.c.seq)
            )
            if (openai := batch.openai) is not None:
                await conn.execute(
                    insert(openai_batches).values(
                        batch_seq=seq,
                        endpoint=openai.endpoint,
                        input_file_id=openai.input_file_id,
                        completion_window=openai.completion_window,
                        metadata=openai.metadata,
                        model=openai.model,
                        errors=openai.errors,
                        output_expires_seconds=openai.output_expires_seconds,
                    )
                )
            columns = ("batch_seq", "custom_id", "model", "state", "params", "batch_position")
            for start in range(0, len(items), CHUNK * 10):
                rows = [
                    (seq, item.custom_id, item.model, "queued", item.params, position)
                    for position, item in enumerate(items[start : start + CHUNK * 10], start=start)
                ]
                await insert_many(conn, requests, columns, rows)
            if items:
                await notify_work(conn)
            return await batch_by_seq(conn, seq)

    async def find_idempotent(
        self, workspace_id: int, idempotency_key: str
    ) -> tuple[BatchRecord, str | None] | None:
        async with self._db.reader.connect() as conn:
            row = (
                await conn.execute(
                    select_batches().where(
                        batches.c.workspace_id == workspace_id,
                        batches.c.idempotency_key == idempotency_key,
                    )
                )
            ).first()
        return (batch_record(row), row.body_digest) if row else None

    async def get_batch(self, workspace_id: int, batch_id: str) -> BatchRecord | None:
        async with self._db.reader.connect() as conn:
            row = await find_batch(conn, workspace_id, batch_id)
        return batch_record(row) if row else None

    async def list_batches(
        self,
        workspace_id: int,
        *,
        limit: int,
        after_id: str | None,
        before_id: str | None,
        openai: bool = False,
    ) -> BatchPage | None:
        async with self._db.reader.connect() as conn:
            surface = (
                openai_batches.c.batch_seq.is_not(None)
                if openai
                else (openai_batches.c.batch_seq.is_(None))
            )
            query = select_batches().where(batches.c.workspace_id == workspace_id, surface)
            cursor_id = after_id or before_id
            if cursor_id is not None:
                cursor = await find_batch(conn, workspace_id, cursor_id)
                if cursor is None or (cursor.oa_endpoint is not None) != openai:
                    return None
                if after_id is not None:
                    query = query.where(batches.c.seq < cursor.seq)
                else:
                    query = query.where(batches.c.seq > cursor.seq)
            # ``before_id`` walks towards newer batches: take the nearest ones, then show
            # them newest first like every other page.
            order = batches.c.seq.asc() if before_id is not None else batches.c.seq.desc()
            rows = (await conn.execute(query.order_by(order).limit(limit + 1))).all()
        page = [batch_record(row) for row in rows[:limit]]
        if before_id is not None:
            page.reverse()
        return BatchPage(batches=page, has_more=len(rows) > limit)

    async def cancel_batch(self, workspace_id: int, batch_id: str, now: int) -> BatchRecord | None:
        async with self._db.writer.begin() as conn:
            row = await find_batch(conn, workspace_id, batch_id)
            if row is None:
                return None
            if row.status == "in_progress":
                await conn.execute(
                    update(batches)
                    .where(batches.c.seq == row.seq)
                    .values(status="canceling", cancel_initiated_at=now)
                )
                settle_as = closing_as("canceling", row.expires_at, now)
                assert settle_as is not None
                await settle_queued(conn, row.seq, settle_as, now)
                await notify_work(conn)  # workers holding its requests drop them now
            return await batch_by_seq(conn, row.seq)

    async def delete_batch(self, workspace_id: int, batch_id: str) -> BatchRecord | None:
        async with self._db.writer.begin() as conn:
            row = await find_batch(conn, workspace_id, batch_id)
            if row is None:
                return None
            record = batch_record(row)
            if record.status == "ended":
                await _delete_batch_rows(conn, record.seq)
            return record

    async def iter_outcomes(
        self, batch_seq: int, *, page_size: int = 1000
    ) -> AsyncIterator[list[StoredOutcome]]:
        last = ""
        query = (
            select(requests.c.custom_id, requests.c.state, outcomes.c.outcome)
            .select_from(requests.outerjoin(outcomes, outcomes.c.row_id == requests.c.id))
            .order_by(requests.c.custom_id)
            .limit(page_size)
        )
        while True:
            async with self._db.reader.connect() as conn:
                rows = (
                    await conn.execute(
                        query.where(requests.c.batch_seq == batch_seq, requests.c.custom_id > last)
                    )
                ).all()
            if not rows:
                return
            yield [
                StoredOutcome(
                    row.custom_id, row.state, None if row.outcome is None else bytes(row.outcome)
                )
                for row in rows
            ]
            last = rows[-1].custom_id

    async def record_result_files(
        self, batch_seq: int, output_file_id: str | None, error_file_id: str | None, now: int
    ) -> None:
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(openai_batches)
                .where(
                    openai_batches.c.batch_seq == batch_seq,
                    openai_batches.c.files_made_at.is_(None),
                )
                .values(
                    output_file_id=output_file_id, error_file_id=error_file_id, files_made_at=now
                )
            )

    async def token_totals(self, batch_seq: int) -> tuple[int, int]:
        async with self._db.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.coalesce(func.sum(outcomes.c.input_tokens), 0),
                        func.coalesce(func.sum(outcomes.c.output_tokens), 0),
                    )
                    .select_from(outcomes.join(requests, requests.c.id == outcomes.c.row_id))
                    .where(requests.c.batch_seq == batch_seq)
                )
            ).one()
        return int(row[0]), int(row[1])

    async def count_states(self, batch_seq: int) -> dict[str, int]:
        async with self._db.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(requests.c.state, func.count())
                    .where(requests.c.batch_seq == batch_seq)
                    .group_by(requests.c.state)
                )
            ).all()
        return {state: count for state, count in rows}


async def _delete_batch_rows(conn: AsyncConnection, seq: int) -> None:
    await conn.execute(
        delete(outcomes).where(
            outcomes.c.row_id.in_(select(requests.c.id).where(requests.c.batch_seq == seq))
        )
    )
    await conn.execute(delete(requests).where(requests.c.batch_seq == seq))
    await conn.execute(delete(openai_batches).where(openai_batches.c.batch_seq == seq))
    await conn.execute(delete(batches).where(batches.c.seq == seq))


#: First key of the PostgreSQL advisory lock that serializes a workspace's creates while a
#: queue limit is checked (the second key is the workspace id).
_QUEUE_LIMIT_LOCK = 0x62790001


async def _check_queue_limits(conn: AsyncConnection, batch: NewBatch) -> None:
    """Raise :class:`QueueFull` if ``batch`` would pass one of its queue limits.

    Counted in the create's own transaction: SQLite runs one writer at a time, and on
    PostgreSQL the workspace's creates wait for each other on an advisory lock, so two
    concurrent creates cannot both fit under a limit only one of them fits under.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(func.pg_advisory_xact_lock(_QUEUE_LIMIT_LOCK, batch.workspace_id))
        )
    open_seqs = select(batches.c.seq).where(
        batches.c.workspace_id == batch.workspace_id, batches.c.status == "in_progress"
    )
    for limit in batch.queue_limits:
        # From the workspace's open batches through ix_requests_batch_queued: other
        # workspaces' queues are never read.
        queued = await conn.scalar(
            select(func.count()).where(
                requests.c.batch_seq.in_(open_seqs),
                requests.c.model.in_(limit.names),
                requests.c.state == "queued",
            )
        )
        if (queued or 0) + limit.adding > limit.limit:
            raise QueueFull(limit.model, queued or 0, limit.adding, limit.limit)
