"""OpenAI Files: uploads kept as ~1 MiB chunks beside their row, and generated files' rows.

Invariants enforced here:

* **A file is whole or absent**: an upload's row and every chunk are inserted in one
  transaction, so a failure midway (a broken upload, a crash) leaves nothing behind and a
  reader never sees a row whose content is still arriving. The caller feeds content from
  local storage (the API spools the upload first), so on SQLite the one writer is held for
  as long as a local copy takes, never for as long as a slow client takes to send.
* **Workspaces are walls**: every lookup by a file id is scoped to the caller's workspace.
* **One generated file per batch and part**: a unique constraint decides a race.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from sqlalchemy import Row, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.database import Database
from batchyard.store.records import FilePage, FileRecord, NewFile
from batchyard.store.tables import file_chunks, files

#: Bytes per stored chunk: big enough that a 200 MB file is 200 rows, small enough that a
#: read of a few chunks is a few MiB.
CHUNK_BYTES = 1 << 20
#: Chunks per read while streaming a file out.
_CHUNKS_PER_READ = 2


class SqlFiles:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_file(self, new: NewFile, content: AsyncIterator[bytes]) -> FileRecord:
        async with self._db.writer.begin() as conn:
            await conn.execute(insert(files).values(**_new_row(new), status="processed"))
            size = 0
            seq = 0
            async for chunk in _rechunked(content):
                await conn.execute(insert(file_chunks).values(file_id=new.id, seq=seq, data=chunk))
                seq += 1
                size += len(chunk)
            await conn.execute(update(files).where(files.c.id == new.id).values(bytes=size))
            return await _file_by_id(conn, new.id)

    async def get_file(self, workspace_id: int, file_id: str) -> FileRecord | None:
        async with self._db.reader.connect() as conn:
            row = await _find_file(conn, workspace_id, file_id)
        return _file_record(row) if row else None

    async def list_files(
        self,
        workspace_id: int,
        *,
        purpose: str | None,
        after: str | None,
        limit: int,
        order: Literal["asc", "desc"],
    ) -> FilePage | None:
        query = select(files).where(files.c.workspace_id == workspace_id)
        if purpose is not None:
            query = query.where(files.c.purpose == purpose)
        async with self._db.reader.connect() as conn:
            if after is not None:
                cursor = await _find_file(conn, workspace_id, after)
                if cursor is None:
                    return None
                # Row-value comparison spelled out: (created_at, id) beyond the cursor's.
                if order == "desc":
                    beyond = or_(
                        files.c.created_at < cursor.created_at,
                        and_(files.c.created_at == cursor.created_at, files.c.id < cursor.id),
                    )
                else:
                    beyond = or_(
                        files.c.created_at > cursor.created_at,
                        and_(files.c.created_at == cursor.created_at, files.c.id > cursor.id),
                    )
                query = query.where(beyond)
            keys = (files.c.created_at, files.c.id)
            ordering = [key.desc() if order == "desc" else key.asc() for key in keys]
            rows = (await conn.execute(query.order_by(*ordering).limit(limit + 1))).all()
        return FilePage(
            files=[_file_record(row) for row in rows[:limit]], has_more=len(rows) > limit
        )

    async def delete_file(self, workspace_id: int, file_id: str) -> FileRecord | None:
        async with self._db.writer.begin() as conn:
            row = await _find_file(conn, workspace_id, file_id)
            if row is None:
                return None
            await delete_files(conn, [file_id])
        return _file_record(row)

    async def iter_content(self, file_id: str) -> AsyncIterator[bytes]:
        next_seq = 0
        query = (
            select(file_chunks.c.seq, file_chunks.c.data)
            .order_by(file_chunks.c.seq)
            .limit(_CHUNKS_PER_READ)
        )
        while True:
            async with self._db.reader.connect() as conn:
                rows = (
                    await conn.execute(
                        query.where(file_chunks.c.file_id == file_id, file_chunks.c.seq >= next_seq)
                    )
                ).all()
            if not rows:
                return
            next_seq = rows[-1].seq + 1
            for row in rows:
                yield bytes(row.data)

    async def add_generated_file(self, new: NewFile, batch_seq: int, part: str) -> FileRecord:
        try:
            async with self._db.writer.begin() as conn:
                if existing := await _generated(conn, batch_seq, part):
                    return _file_record(existing)
                await conn.execute(
                    insert(files).values(
                        **_new_row(new), status="processed", batch_seq=batch_seq, batch_part=part
                    )
                )
                return await _file_by_id(conn, new.id)
        except IntegrityError:
            # Another process added it between our look and our insert (PostgreSQL; SQLite's
            # writers take turns): theirs is the one.
            async with self._db.reader.connect() as conn:
                existing = await _generated(conn, batch_seq, part)
            if existing is None:
                raise
            return _file_record(existing)

    async def set_file_bytes(self, file_id: str, size: int) -> None:
        async with self._db.writer.begin() as conn:
            await conn.execute(update(files).where(files.c.id == file_id).values(bytes=size))


async def delete_files(conn: AsyncConnection, file_ids: list[str]) -> None:
    """Delete files and their chunks (chunks first: they reference the row)."""
    await conn.execute(delete(file_chunks).where(file_chunks.c.file_id.in_(file_ids)))
    await conn.execute(delete(files).where(files.c.id.in_(file_ids)))


async def _rechunked(content: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``content`` cut into :data:`CHUNK_BYTES` pieces (the last one shorter), whatever
    sizes it comes in."""
    pending = bytearray()
    async for piece in content:
        pending += piece
        while len(pending) >= CHUNK_BYTES:
            yield bytes(pending[:CHUNK_BYTES])
            del pending[:CHUNK_BYTES]
    if pending:
        yield bytes(pending)


def _new_row(new: NewFile) -> dict[str, Any]:
    return {
        "id": new.id,
        "workspace_id": new.workspace_id,
        "filename": new.filename,
        "purpose": new.purpose,
        "created_at": new.created_at,
        "expires_at": new.expires_at,
    }


async def _find_file(conn: AsyncConnection, workspace_id: int, file_id: str) -> Row[Any] | None:
    """The file with this id, only if it belongs to ``workspace_id`` (else as if absent)."""
    statement = select(files).where(files.c.id == file_id, files.c.workspace_id == workspace_id)
    return (await conn.execute(statement)).first()


async def _generated(conn: AsyncConnection, batch_seq: int, part: str) -> Row[Any] | None:
    statement = select(files).where(files.c.batch_seq == batch_seq, files.c.batch_part == part)
    return (await conn.execute(statement)).first()


async def _file_by_id(conn: AsyncConnection, file_id: str) -> FileRecord:
    return _file_record((await conn.execute(select(files).where(files.c.id == file_id))).one())


def _file_record(row: Row[Any]) -> FileRecord:
    return FileRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        filename=row.filename,
        purpose=row.purpose,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=row.status,
        batch_seq=row.batch_seq,
        batch_part=row.batch_part,
    )
