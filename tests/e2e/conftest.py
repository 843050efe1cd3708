"""End-to-end tier: real ``batchyard`` processes on loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from harness import KeyFactory, ServerProcess, sim_config, store_api_key


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module on a fresh SQLite file, serving the simulated engine."""
    workdir: Path = tmp_path_factory.mktemp("server")
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'batchyard.db'}", sim_config())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key_factory(sim_server: ServerProcess) -> KeyFactory:
    return partial(store_api_key, sim_server.db_url)
