"""The database object every SQL store module shares: one writer and one reader pool.

SQLite allows one writer at a time. Every write transaction starts with ``BEGIN IMMEDIATE``
so it takes the lock up front (a deferred transaction that reads, then writes, can fail with
SQLITE_BUSY even with a busy timeout). Writes within a process share one connection, so
they queue in-process instead of spinning on the lock; readers use their own pool and, in
WAL mode, never wait for the writer. PostgreSQL uses one pool for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


@dataclass(frozen=True)
class Database:
    """Where SQL runs: ``writer.begin()`` for a write transaction, ``reader.connect()`` to read."""

    writer: AsyncEngine
    reader: AsyncEngine

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def async_url(database_url: str) -> URL:
    """Accept plain ``sqlite:///path`` / ``postgresql://…`` and pick the async driver."""
    url = make_url(database_url)
    backend = url.drivername.split("+", 1)[0]
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database URL scheme {url.drivername!r}")
    return url.set(drivername=_ASYNC_DRIVERS[backend])


def connect(database_url: str) -> Database:
    """Pools for ``database_url``; nothing is opened until first use."""
    url = async_url(database_url)
    if url.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        return Database(writer=engine, reader=engine)
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    writer = create_async_engine(url, pool_size=1, max_overflow=0)
    reader = create_async_engine(url, pool_size=4, max_overflow=4)
    _configure_sqlite(writer, begin="BEGIN IMMEDIATE")
    _configure_sqlite(reader, begin="BEGIN")
    return Database(writer=writer, reader=reader)


def _configure_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours (SQLAlchemy docs,
        # "Serializable isolation / Savepoints / Transactional DDL").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Before anything else: it takes effect only in a file that has no tables yet, and
        # lets the retention purge hand freed pages back (``PRAGMA incremental_vacuum``).
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged batch survives power loss, not only a killed process.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)
