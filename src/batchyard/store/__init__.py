"""Storage: the protocols everything above depends on, and ``open_store`` to pick one.

Placeholder of the store refactor's worktree: only ``memory://`` opens here; the SQL
branch of :func:`open_store` lands with the rewritten SQL store.
"""

from __future__ import annotations

from batchyard.store.protocols import Store


async def open_store(database_url: str) -> Store:
    """Open the store a URL names: ``memory://``, ``sqlite:///…`` or ``postgresql://…``."""
    if database_url == "memory://":
        from batchyard.store.memory import MemoryStore

        return MemoryStore()
    raise NotImplementedError(f"only memory:// opens in this checkout, not {database_url!r}")


__all__ = ["Store", "open_store"]
