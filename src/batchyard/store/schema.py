"""The SQL schema's version: Alembic migrations (``store/migrations/``), one history for
SQLite and PostgreSQL.

* A **new, empty** database gets today's tables at once (``create_all``, the same tables the
  migrations make, which a test checks) and is stamped at the newest revision.
* A database **at the newest revision** is used as it is.
* Anything else is refused by every process that opens it (:func:`ensure_schema` raises
  :class:`~batchyard.errors.SchemaMismatch` with one line saying what to run), until
  ``batchyard db upgrade`` (:func:`upgrade`) brings it forward. Nothing is changed behind an
  operator's back: several processes may share the database, and an upgrade is a decision.
* A database made by batchyard **before migrations** has no ``alembic_version`` table; if its
  tables are the baseline's (revision ``0001``) it is stamped there and upgraded like any
  other, else it is refused: it predates the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from batchyard.errors import SchemaMismatch
from batchyard.store.database import Database
from batchyard.store.tables import metadata

#: The revision a database made before migrations is at, if its tables are complete.
BASELINE = "0001"
#: The baseline's tables and columns: what a database made before migrations must have.
_BASELINE_COLUMNS = {
    "workspaces": {"id", "name", "created_at"},
    "api_keys": {"id", "workspace_id", "key_hash", "key_hint", "created_at"},
    "batches": {
        "seq", "id", "workspace_id", "status", "total", "processing", "succeeded", "errored",
        "canceled", "expired", "created_at", "expires_at", "archives_at", "ended_at",
        "cancel_initiated_at", "purged", "idempotency_key", "body_digest", "headers",
    },
    "requests": {
        "id", "batch_seq", "custom_id", "model", "state", "attempt", "lease_expires_at",
        "not_before", "params", "submission_id",
    },
    "outcomes": {"row_id", "outcome", "input_tokens", "output_tokens"},
    "webhooks": {"id", "workspace_id", "url", "secret", "created_at"},
    "webhook_deliveries": {
        "id", "webhook_id", "batch_id", "event", "created_at", "attempts", "next_attempt_at",
        "lease_expires_at", "delivered_at", "last_error",
    },
    "submissions": {
        "id", "model", "state", "upstream_id", "headers", "request_count", "created_at",
        "submitted_at", "ended_at", "next_check_at", "checks", "lease_expires_at",
        "cancel_sent_at",
    },
    "rate_limits": {"key", "state"},
}  # fmt: skip
#: The advisory lock key of schema work (any constant unique to batchyard).
_LOCK_KEY = 0x62_79_61_72_64  # "byard"
_UPGRADE_HINT = "run `batchyard db upgrade` (with the same --db) to bring it forward"


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade` did: the revision before (``None``: made before migrations, or
    empty) and after."""

    before: str | None
    after: str


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this batchyard knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


async def ensure_schema(db: Database) -> None:
    """Create the tables of an empty database; refuse one that is not at :func:`head`."""
    async with db.writer.begin() as conn:
        current = await conn.run_sync(_prepare)
    if current != head():
        _refuse_unknown(current)
        where = f"at schema revision {current}" if current else "made before migrations"
        raise SchemaMismatch(
            f"the database was {where} and this batchyard needs revision {head()}: " + _UPGRADE_HINT
        )


def _refuse_unknown(revision: str | None) -> None:
    """A revision this batchyard has no migration for: a newer one upgraded the database."""
    if revision is None:
        return
    try:
        ScriptDirectory.from_config(_config()).get_revision(revision)
    except Exception:  # alembic's ResolutionError / CommandError: not one of ours
        raise SchemaMismatch(
            f"the database is at schema revision {revision}, which a newer batchyard made "
            f"(this one knows up to {head()}): run that version, or a newer one"
        ) from None


def _serialize(connection: Connection) -> None:
    """On PostgreSQL, one schema check or upgrade at a time, held to the transaction's end:
    processes starting together on an empty database would otherwise all create the tables
    (all but one failing). SQLite's ``BEGIN IMMEDIATE`` serializes them already."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _prepare(connection: Connection) -> str | None:
    """The database's revision, after creating and stamping the tables of an empty one."""
    _serialize(connection)
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None and not set(inspect(connection).get_table_names()) & set(metadata.tables):
        metadata.create_all(connection)
        command.stamp(_config(connection), "head")
        return head()
    return revision


async def upgrade(db: Database) -> Upgrade:
    """Bring the database to :func:`head` (an empty one too), in one transaction."""
    async with db.writer.begin() as conn:
        return await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> Upgrade:
    _serialize(connection)
    before = MigrationContext.configure(connection).get_current_revision()
    _refuse_unknown(before)
    config = _config(connection)
    if before is None and (tables := set(inspect(connection).get_table_names())) & set(
        metadata.tables
    ):
        if missing := _missing_from_baseline(connection, tables):
            raise SchemaMismatch(
                "the database was made by a batchyard older than the migrations' baseline "
                f"(it lacks {missing}); it cannot be upgraded: point --db at a new database"
            )
        command.stamp(config, BASELINE)
        before = None
    command.upgrade(config, "head")
    return Upgrade(before=before, after=head())


def _missing_from_baseline(connection: Connection, tables: set[str]) -> str:
    """What the baseline has that the database lacks: columns of the tables it has first
    (the telling part), then whole tables; "" if nothing."""
    inspector = inspect(connection)
    columns = [
        f"{table}.{column}"
        for table, wanted in _BASELINE_COLUMNS.items()
        if table in tables
        for column in sorted(wanted - {c["name"] for c in inspector.get_columns(table)})
    ]
    absent = [f"table {table}" for table in _BASELINE_COLUMNS if table not in tables]
    missing = columns + absent
    return ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")


async def give_space_back_on_sqlite(db: Database) -> bool:
    """Make a SQLite file made before ``auto_vacuum = INCREMENTAL`` (database.py) shrink as
    the retention purge deletes, rewriting it once with ``VACUUM``; ``True`` if it did.

    PostgreSQL, and SQLite files made since, need nothing. ``VACUUM`` runs outside any
    transaction (``executescript``), and copies the whole file: it is for ``db upgrade``,
    with the servers stopped.
    """
    if db.writer.dialect.name != "sqlite":
        return False
    async with db.writer.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        async with driver.execute("PRAGMA auto_vacuum") as cursor:
            row = await cursor.fetchone()
        if row is not None and row[0] != 0:
            return False
        await driver.executescript("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
        return True
