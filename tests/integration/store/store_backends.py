"""Where a conformance test's store lives: :class:`Backend`, shared by the fixtures and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from batchyard.store import open_store
from batchyard.store.protocols import Store


@dataclass(frozen=True)
class Backend:
    """Where a test's store lives, for the few checks that look past the store."""

    name: str
    url: str

    @property
    def is_sql(self) -> bool:
        return self.name != "memory"

    async def reset(self) -> None:
        """Drop every table, the schema's version too (PostgreSQL keeps them between tests)."""
        from sqlalchemy import text

        from batchyard.store.database import connect
        from batchyard.store.tables import metadata

        db = connect(self.url)
        try:
            async with db.writer.begin() as conn:
                await conn.run_sync(metadata.drop_all)
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        finally:
            await db.dispose()

    async def row_counts(self) -> dict[str, int]:
        """Rows of every table, read past the store (to see orphans it would never return)."""
        from sqlalchemy import func, select

        from batchyard.store.database import connect
        from batchyard.store.tables import metadata

        assert self.is_sql
        db = connect(self.url)
        try:
            async with db.reader.connect() as conn:
                counts: dict[str, int] = {}
                for table in metadata.sorted_tables:
                    count = await conn.scalar(select(func.count()).select_from(table))
                    counts[table.name] = int(count or 0)
                return counts
        finally:
            await db.dispose()

    @asynccontextmanager
    async def another_handle(self, store: Store) -> AsyncIterator[Store]:
        """A second store on the same data, as a second process would open it.

        A memory store is its own database, so the only handle on its data is itself.
        """
        if not self.is_sql:
            yield store
            return
        other = await open_store(self.url)
        try:
            yield other
        finally:
            await other.close()
