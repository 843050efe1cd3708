from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness import ServerProcess

# ``harness`` (server processes, the SQL store) is imported by the fixtures that use it, so
# suites that need no server (tests/unit, tests/integration/store) load without it.


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module on a fresh SQLite file, serving the simulated engine."""
    from harness import ServerProcess, sim_config

    workdir: Path = tmp_path_factory.mktemp("server")
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'batchyard.db'}", sim_config())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api_key(sim_server: ServerProcess, request: pytest.FixtureRequest) -> str:
    """A key in a workspace of its own, so each test sees only its own batches."""
    from harness import add_key

    return add_key(sim_server.db_url, f"ws-{request.node.name}"[:180])
