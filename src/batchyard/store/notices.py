"""Wake-ups across processes on PostgreSQL: ``LISTEN`` / ``NOTIFY``.

Two channels, one ``NOTIFY`` per transaction on each, delivered by PostgreSQL when the
transaction commits (once however many rows it changed, never for one rolled back):

* :data:`WORK_CHANNEL` (:func:`notify_work`): a batch was created or canceled; workers claim
  at once instead of at their next poll.
* :data:`EVENTS_CHANNEL` (:func:`notify_events`): a batch ended and its webhook events are in
  the outbox; every process's webhook sender (API servers' and workers' alike) claims them at
  once.

Every process ``LISTEN`` s on a connection of its own (:func:`listen_for_notices`). Polling
stays: a notice sent while a listener is reconnecting is lost, which costs at most one poll
interval, and a retry's ``not_before`` is still found by the poll. SQLite has no such thing:
there the API server's own worker is nudged in process, and a separate worker polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.store.database import async_url

logger = logging.getLogger("batchyard.store")

WORK_CHANNEL = "batchyard_work"
EVENTS_CHANNEL = "batchyard_events"
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
    await _notify(conn, WORK_CHANNEL)


async def notify_events(conn: AsyncConnection) -> None:
    """Tell listening webhook senders there are events, when ``conn``'s transaction
    commits."""
    await _notify(conn, EVENTS_CHANNEL)


async def _notify(conn: AsyncConnection, channel: str) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


async def listen_for_notices(database_url: str, wakes: Mapping[str, Callable[[], None]]) -> None:
    """Call ``wakes[channel]`` for every notice on ``channel`` until cancelled; returns at
    once where the database is not PostgreSQL. A lost connection is opened again (and every
    wake called, for what may have been sent meanwhile)."""
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
            await _listen(dsn, wakes)
            failures = 0
        except (TimeoutError, OSError) as exc:
            logger.warning("cannot listen for notices (%s); polling meanwhile", exc)
        except Exception as exc:  # asyncpg's own errors: the server refused, or went away
            logger.warning("notices stopped (%s); polling meanwhile", exc)
        failures += 1
        await asyncio.sleep(min(_MAX_RETRY_SECONDS, _RETRY_SECONDS * 2 ** min(failures, 6)))


async def _listen(dsn: str, wakes: Mapping[str, Callable[[], None]]) -> None:
    """Listen on one connection until it is lost."""
    # The ``postgres`` extra's driver, imported only where PostgreSQL is in use.
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(dsn)
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    try:
        for channel, wake in wakes.items():
            await connection.add_listener(channel, _call(wake))
        for wake in wakes.values():
            wake()
        await lost.wait()
        logger.warning("the notice connection was lost; listening again")
    finally:
        await connection.close()


def _call(wake: Callable[[], None]) -> Callable[..., None]:
    """An asyncpg listener (it is called with the connection, pid, channel and payload)
    that calls ``wake``."""
    return lambda *_notice: wake()
