"""Reads and small writes that several SQL store modules share, each written once."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import Row, Select, Table, bindparam, insert, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.records import BatchRecord, Headers, OpenAIBatch, UnstartedState, closing_as
from batchyard.store.tables import batches, openai_batches, workspaces

#: Rows per statement for bulk work; keeps every statement under SQLite's parameter limit.
CHUNK = 1000


async def insert_many(
    conn: AsyncConnection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (values in the order of ``columns``) with the driver's executemany.

    For bulk inserts: the statement is compiled for this dialect and the tuples go to the
    driver as they are, skipping SQLAlchemy's per-row parameter processing (measured: about
    half the time of a 100k create's insert). The compiled statement's placeholders follow
    the table's column order, so ``columns`` must too.
    """
    await conn.exec_driver_sql(_insert_sql(table, tuple(columns), conn.dialect), rows)


@functools.cache
def _insert_sql(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    if list(columns) != [column.name for column in table.columns if column.name in columns]:
        raise ValueError(f"columns must be in {table.name}'s column order: {columns}")
    statement = insert(table).values({name: bindparam(name) for name in columns})
    return str(statement.compile(dialect=dialect))


_headers_encoder = msgspec.json.Encoder()
_headers_decoder = msgspec.json.Decoder(list[tuple[str, str]])


def encode_headers(headers: Headers) -> bytes | None:
    """A batch's headers as stored: JSON pairs, ``None`` (``NULL``) when there are none."""
    return _headers_encoder.encode(headers) if headers else None


def decode_headers(raw: bytes | None) -> Headers:
    return tuple(_headers_decoder.decode(raw)) if raw else ()


async def chat_batches(conn: AsyncConnection, seqs: Iterable[int]) -> set[int]:
    """Which of the batches ``seqs`` came through the OpenAI surface (Chat Completions params)."""
    wanted = sorted(set(seqs))
    found: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        rows = await conn.execute(
            select(openai_batches.c.batch_seq).where(
                openai_batches.c.batch_seq.in_(wanted[start : start + CHUNK])
            )
        )
        found.update(rows.scalars())
    return found


def select_batches() -> Select[Any]:
    """Batch rows with the OpenAI surface's fields beside them (``NULL`` for the others):
    every read that makes a :class:`BatchRecord` starts here."""
    return select(
        batches,
        openai_batches.c.endpoint.label("oa_endpoint"),
        openai_batches.c.input_file_id.label("oa_input_file_id"),
        openai_batches.c.completion_window.label("oa_completion_window"),
        openai_batches.c.metadata.label("oa_metadata"),
        openai_batches.c.model.label("oa_model"),
        openai_batches.c.errors.label("oa_errors"),
        openai_batches.c.output_expires_seconds.label("oa_output_expires_seconds"),
        openai_batches.c.output_file_id.label("oa_output_file_id"),
        openai_batches.c.error_file_id.label("oa_error_file_id"),
        openai_batches.c.files_made_at.label("oa_files_made_at"),
    ).select_from(batches.outerjoin(openai_batches, openai_batches.c.batch_seq == batches.c.seq))


async def find_batch(conn: AsyncConnection, workspace_id: int, batch_id: str) -> Row[Any] | None:
    """The batch row with this public id, only if it belongs to ``workspace_id``.

    Every lookup by a client-supplied id goes through here: a batch of another workspace is
    indistinguishable from one that does not exist.
    """
    statement = select_batches().where(
        batches.c.id == batch_id, batches.c.workspace_id == workspace_id
    )
    row: Row[Any] | None = (await conn.execute(statement)).first()
    return row


async def batch_by_seq(conn: AsyncConnection, seq: int) -> BatchRecord:
    row = (await conn.execute(select_batches().where(batches.c.seq == seq))).one()
    return batch_record(row)


def batch_record(row: Row[Any]) -> BatchRecord:
    return BatchRecord(
        seq=row.seq,
        id=row.id,
        workspace_id=row.workspace_id,
        status=row.status,
        total=row.total,
        processing=row.processing,
        succeeded=row.succeeded,
        errored=row.errored,
        canceled=row.canceled,
        expired=row.expired,
        created_at=row.created_at,
        expires_at=row.expires_at,
        archives_at=row.archives_at,
        ended_at=row.ended_at,
        cancel_initiated_at=row.cancel_initiated_at,
        openai=None
        if row.oa_endpoint is None
        else OpenAIBatch(
            endpoint=row.oa_endpoint,
            input_file_id=row.oa_input_file_id,
            completion_window=row.oa_completion_window,
            metadata=_optional_bytes(row.oa_metadata),
            model=row.oa_model,
            errors=_optional_bytes(row.oa_errors),
            output_expires_seconds=row.oa_output_expires_seconds,
            files_made=row.oa_files_made_at is not None,
            output_file_id=row.oa_output_file_id,
            error_file_id=row.oa_error_file_id,
        ),
    )


def _optional_bytes(value: bytes | memoryview | None) -> bytes | None:
    return None if value is None else bytes(value)


async def workspace_named(conn: AsyncConnection, name: str, now: int) -> int:
    """The id of the workspace called ``name``, created on first use."""
    workspace_id: int | None = await conn.scalar(
        select(workspaces.c.id).where(workspaces.c.name == name)
    )
    if workspace_id is None:
        workspace_id = await conn.scalar(
            insert(workspaces).values(name=name, created_at=now).returning(workspaces.c.id)
        )
    assert workspace_id is not None
    return workspace_id


async def closing_batches(conn: AsyncConnection, now: int) -> dict[int, UnstartedState]:
    """Open batches whose unstarted requests must not run: seq → how they end."""
    rows = (
        await conn.execute(
            select(batches.c.seq, batches.c.status, batches.c.expires_at).where(
                batches.c.status != "ended"
            )
        )
    ).all()
    closing: dict[int, UnstartedState] = {}
    for row in rows:
        if state := closing_as(row.status, row.expires_at, now):
            closing[row.seq] = state
    return closing
