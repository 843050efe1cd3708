from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ServerProcess, add_key, sim_config


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module on a fresh SQLite file, serving the simulated engine."""
    workdir: Path = tmp_path_factory.mktemp("server")
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'batchyard.db'}", sim_config())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api_key(sim_server: ServerProcess, request: pytest.FixtureRequest) -> str:
    """A key in a workspace of its own, so each test sees only its own batches."""
    return add_key(sim_server.db_url, f"ws-{request.node.name}"[:180])
