"""One ``store`` fixture over every backend: ``sqlite``, ``postgresql`` and ``memory``.

Every test of this folder runs once per backend; select one with ``-k memory`` (or
``-k sqlite``, ``-k postgresql``). Each test gets fresh state: a new SQLite file, dropped
PostgreSQL tables, a new :class:`~batchyard.store.memory.MemoryStore`.

PostgreSQL: a database of this test session's own on the server of
``BATCHYARD_TEST_POSTGRES_URL`` (default: a local server with trust auth), dropped at the end,
so concurrent runs never share tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from harness import postgres_database
from store_backends import Backend

from batchyard.store import open_store
from batchyard.store.protocols import Store

BACKENDS = ["sqlite", "postgresql", "memory"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'store.db'}",
        "postgresql": request.getfixturevalue("postgres_url") if name == "postgresql" else "",
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
