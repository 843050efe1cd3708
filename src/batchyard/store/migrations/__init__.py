"""Alembic migrations of the SQL store (see :mod:`batchyard.store.schema`)."""
