"""Wake-ups across processes on PostgreSQL: ``LISTEN`` / ``NOTIFY``.

A transaction that gives workers something to do (a batch created, a batch canceled) sends
one ``NOTIFY`` on :data:`WORK_CHANNEL` (:func:`notify_work`); PostgreSQL delivers it when the
transaction commits, once however many requests it holds, and never for one rolled back.
Every worker process ``LISTEN`` s on a connection of its own (:func:`listen_for_work`) and
claims at once, instead of at its next poll. Polling stays: a notice sent while a listener is
reconnecting is lost, which costs at most one poll interval, and a retry's ``not_before`` is
still found by the poll. SQLite has no such thing: there the API server's own worker is
nudged in process, and a separate worker polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.database import async_url

logger = logging.getLogger("batchyard.store")

WORK_CHANNEL = "batchyard_work"
#: How long to wait before connecting again after the listening connection failed, doubled
#: after each failure in a row, up to the maximum.
_RETRY_SECONDS = 0.5
_MAX_RETRY_SECONDS = 30.0
#: Query keys of a PostgreSQL URL that asyncpg's DSN takes as connection options.
_DSN_KEYS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "passfile",
     "application_name", "connect_timeout", "target_session_attrs", "krbsrvname", "gsslib"}
)  # fmt: skip


async def notify_work(conn: AsyncConnection) -> None:
    """Tell listening workers there is work, when ``conn``'s transaction commits."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WORK_CHANNEL})


async def listen_for_work(database_url: str, wake: Callable[[], None]) -> None:
    """Call ``wake`` for every work notice until cancelled; returns at once where the
    database is not PostgreSQL. A lost connection is opened again (and ``wake`` called, for
    what may have been sent meanwhile)."""
    try:
        url = async_url(database_url)  # the one reading of a URL (``postgres://`` too)
    except ValueError:  # not SQL at all: the in-memory store, one process
        return
    if url.get_backend_name() != "postgresql":
        return
    # Only what libpq's DSN means: asyncpg would send other query keys (SQLAlchemy's own,
    # such as prepared_statement_cache_size) to the server as settings, which it refuses.
    query = {key: value for key, value in url.query.items() if key in _DSN_KEYS}
    dsn = url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)
    failures = 0
    while True:
        try:
            await _listen(dsn, wake)
            failures = 0
        except (TimeoutError, OSError) as exc:
            logger.warning("cannot listen for work notices (%s); polling meanwhile", exc)
        except Exception as exc:  # asyncpg's own errors: the server refused, or went away
            logger.warning("work notices stopped (%s); polling meanwhile", exc)
        failures += 1
        await asyncio.sleep(min(_MAX_RETRY_SECONDS, _RETRY_SECONDS * 2 ** min(failures, 6)))


async def _listen(dsn: str, wake: Callable[[], None]) -> None:
    """Listen on one connection until it is lost."""
    # The ``postgres`` extra's driver, imported only where PostgreSQL is in use.
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(dsn)
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    try:
        await connection.add_listener(WORK_CHANNEL, lambda *_notice: wake())
        wake()
        await lost.wait()
        logger.warning("the work notice connection was lost; listening again")
    finally:
        await connection.close()
