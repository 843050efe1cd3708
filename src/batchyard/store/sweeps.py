"""Periodic repairs: lost leases, closed batches' stragglers, retention, expired files.

Every sweep is a guarded, set-based change (a request moves only from the state the sweep
expects), so any number of processes may run them at once without double effects.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable

from sqlalchemy import and_, delete, insert, select, update

from batchyard.store.database import Database
from batchyard.store.files import delete_files
from batchyard.store.ledger import apply_tally, settle_queued
from batchyard.store.rows import CHUNK, closing_batches
from batchyard.store.tables import batches, files, outcomes, requests


class SqlSweeps:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def requeue_expired_leases(
        self, now: int, *, max_attempts: int, exhausted: Callable[[], bytes]
    ) -> int:
        async with self._db.writer.begin() as conn:
            expired = (
                await conn.execute(
                    select(requests.c.id, requests.c.batch_seq, requests.c.attempt).where(
                        requests.c.state == "running", requests.c.lease_expires_at < now
                    )
                )
            ).all()
            if not expired:
                return 0
            still_lost = and_(requests.c.state == "running", requests.c.lease_expires_at < now)
            retry_ids = [row.id for row in expired if row.attempt < max_attempts]
            for start in range(0, len(retry_ids), CHUNK):
                await conn.execute(
                    update(requests)
                    .where(requests.c.id.in_(retry_ids[start : start + CHUNK]), still_lost)
                    .values(state="queued", lease_expires_at=None)
                )
            tally: defaultdict[int, Counter[str]] = defaultdict(Counter)
            for row in expired:
                if row.attempt < max_attempts:
                    continue
                moved = (
                    await conn.execute(
                        update(requests)
                        .where(requests.c.id == row.id, still_lost)
                        .values(state="errored", lease_expires_at=None)
                    )
                ).rowcount
                if moved:
                    await conn.execute(insert(outcomes).values(row_id=row.id, outcome=exhausted()))
                    tally[row.batch_seq]["errored"] += 1
            await apply_tally(conn, tally, now)
        return len(expired)

    async def settle_closing_batches(self, now: int) -> int:
        settled = 0
        async with self._db.writer.begin() as conn:
            for seq, state in (await closing_batches(conn, now)).items():
                settled += await settle_queued(conn, seq, state, now)
        return settled

    async def purge_archived(self, now: int, *, limit: int) -> int:
        async with self._db.writer.begin() as conn:
            seq = await conn.scalar(
                select(batches.c.seq)
                .where(
                    batches.c.archives_at <= now,
                    batches.c.status == "ended",
                    batches.c.purged == 0,
                )
                .order_by(batches.c.seq)
                .limit(1)
            )
            if seq is None:
                return 0
            row_ids = list(
                await conn.scalars(
                    select(requests.c.id).where(requests.c.batch_seq == seq).limit(limit)
                )
            )
            if not row_ids:
                await conn.execute(update(batches).where(batches.c.seq == seq).values(purged=1))
                return 1
            for start in range(0, len(row_ids), CHUNK):
                chunk = row_ids[start : start + CHUNK]
                await conn.execute(delete(outcomes).where(outcomes.c.row_id.in_(chunk)))
                await conn.execute(delete(requests).where(requests.c.id.in_(chunk)))
        if self._db.writer.dialect.name == "sqlite":
            await _give_back_free_pages(self._db)
        return len(row_ids)

    async def purge_expired_files(self, now: int, *, limit: int) -> int:
        async with self._db.writer.begin() as conn:
            expired = list(
                (
                    await conn.scalars(
                        select(files.c.id)
                        .where(files.c.expires_at.is_not(None), files.c.expires_at <= now)
                        .order_by(files.c.expires_at)
                        .limit(limit)
                    )
                ).all()
            )
            if expired:
                await delete_files(conn, expired)
        return len(expired)


async def _give_back_free_pages(db: Database) -> None:
    """Truncate the SQLite file by the pages a purge step freed (a database made with
    ``auto_vacuum = INCREMENTAL``, see database.py; a no-op on older files).

    Through ``executescript``: the pragma frees one page per step of its statement, and only
    ``sqlite3_exec`` steps it to the end; run between transactions, as that requires.
    """
    async with db.writer.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.executescript("PRAGMA incremental_vacuum")
