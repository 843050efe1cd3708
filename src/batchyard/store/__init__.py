"""Durable state behind small protocols (:mod:`batchyard.store.protocols`).

:func:`open_store` is the one place that picks an implementation: ``memory://`` for the
in-memory store (one process, nothing kept), any other URL for the SQL store.
"""

from __future__ import annotations

from batchyard.store.protocols import Store

MEMORY_URL = "memory://"


async def open_store(database_url: str) -> Store:
    if database_url == MEMORY_URL:
        from batchyard.store.memory import MemoryStore

        return MemoryStore()
    from batchyard.store.sql import SqlStore

    return await SqlStore.open(database_url)


__all__ = ["MEMORY_URL", "Store", "open_store"]
