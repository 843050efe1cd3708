"""The SQL store: every concern's SQL implementation over one shared database object.

Only the process wiring (:func:`batchyard.store.open_store`) builds this class; everything
else reaches storage through the protocols in :mod:`batchyard.store.protocols`.
"""

from __future__ import annotations

from batchyard.store.batches import SqlBatches
from batchyard.store.database import Database, connect
from batchyard.store.files import SqlFiles
from batchyard.store.keys import SqlKeys
from batchyard.store.outbox import SqlOutbox
from batchyard.store.queue import SqlQueue
from batchyard.store.rate_limits import SqlRateLimits
from batchyard.store.schema import ensure_schema
from batchyard.store.submissions import SqlSubmissions
from batchyard.store.sweeps import SqlSweeps


class SqlStore:
    """SQLite or PostgreSQL, chosen by the database URL; one code path for both."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.keys = SqlKeys(db)
        self.batches = SqlBatches(db)
        self.queue = SqlQueue(db)
        self.outbox = SqlOutbox(db)
        self.sweeps = SqlSweeps(db)
        self.submissions = SqlSubmissions(db)
        self.rate_limits = SqlRateLimits(db)
        self.files = SqlFiles(db)

    @classmethod
    async def open(cls, database_url: str) -> SqlStore:
        """Connect, create the schema in an empty database, refuse an outdated one."""
        db = connect(database_url)
        try:
            await ensure_schema(db)
        except BaseException:
            await db.dispose()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.dispose()
