"""One ``store`` fixture over every backend: ``sqlite``, ``postgresql`` and ``memory``.

Every test of this folder runs once per backend; select one with ``-k memory`` (or
``-k sqlite``, ``-k postgresql``). Each test gets fresh state: a new SQLite file, dropped
PostgreSQL tables, a new :class:`~batchyard.store.memory.MemoryStore`.

PostgreSQL comes from ``BATCHYARD_TEST_POSTGRES_URL`` (default: a local server with trust
auth, database ``test``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_backends import Backend

from batchyard.store import open_store
from batchyard.store.protocols import Store

POSTGRES_URL = os.environ.get(
    "BATCHYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql", "memory"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'store.db'}",
        "postgresql": POSTGRES_URL,
        "memory": "memory://",
    }[name]
    return Backend(name, url)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    if backend.name == "postgresql":
        await backend.reset()
    opened = await open_store(backend.url)
    try:
        yield opened
    finally:
        await opened.close()
