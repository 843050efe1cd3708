"""Shared rate-limit states: one row per key, rewritten under a row lock.

One code path for both databases: ``SELECT … FOR UPDATE`` locks the row on PostgreSQL (other
workers wait for this transaction), and SQLite's ``BEGIN IMMEDIATE`` already serializes every
writer (SQLAlchemy leaves the clause out there). A key's first row may be inserted by two
workers at once on PostgreSQL: the loser's insert fails on the primary key and it runs its
change again on the winner's row.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from batchyard.store.database import Database
from batchyard.store.tables import rate_limits


class SqlRateLimits:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def update_rate_limit(self, key: str, change: Callable[[bytes | None], bytes]) -> None:
        try:
            await self._update(key, change)
        except IntegrityError:  # another worker made the first row meanwhile
            await self._update(key, change)

    async def _update(self, key: str, change: Callable[[bytes | None], bytes]) -> None:
        async with self._db.writer.begin() as conn:
            current = await conn.scalar(
                select(rate_limits.c.state).where(rate_limits.c.key == key).with_for_update()
            )
            state = change(current)
            if current is None:
                await conn.execute(insert(rate_limits).values(key=key, state=state))
            else:
                await conn.execute(
                    update(rate_limits).where(rate_limits.c.key == key).values(state=state)
                )
