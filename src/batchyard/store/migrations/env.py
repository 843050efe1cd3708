"""Alembic's environment for batchyard: migrations run on the connection the caller opened
(:mod:`batchyard.store.schema` passes it in ``config.attributes``), inside its transaction,
so an upgrade is all or nothing on both backends (their DDL is transactional)."""

from __future__ import annotations

from alembic import context

from batchyard.store.tables import metadata

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    # SQLite alters a table by copying it: Alembic's batch mode does that where needed.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
