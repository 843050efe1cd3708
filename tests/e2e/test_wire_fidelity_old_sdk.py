"""Issue 7's wire-fidelity rows sent by the official Python SDK 0.75 (``x-api-key``,
``anthropic-version: 2023-06-01``, ``temperature``/``top_p``/``top_k`` as keywords, the beta
``output_format``), against a real ``batchyard serve``.

0.75 cannot share the test process with the latest SDK, so wire_rows_old_sdk.py makes the
calls in a child process with 0.75 first on its path (as test_sdk_python.py does) and reports
each outcome; this module holds the expectations. ``sim`` is text-only and refuses what it
cannot honour by name; ``sim-lenient`` sets ``accept_unsupported = true`` and answers any
body that passes validation; ``relayed`` is an ``anthropic`` relay to a second batchyard's
``sim-lenient``, so its outcomes are the upstream's (the relay forwards bodies and
``anthropic-beta`` and judges nothing itself). The latest SDK's rows are
tests/integration/api/test_wire_fidelity.py and tests/e2e/test_relay_passthrough.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import OLD_PYTHON_SDK, ServerProcess, add_key, sim_config

SCRIPT = Path(__file__).with_name("wire_rows_old_sdk.py")
PLAIN, LENIENT, RELAYED = "sim", "sim-lenient", "relayed"
CONFIG = sim_config(
    sim_latency_ms=0,
    extra_models=(
        f'\n[[models]]\nname = "{LENIENT}"\nengine = "simulated"\n'
        "latency_ms = 0\naccept_unsupported = true\n"
    ),
)

#: Row → (outcome on ``sim``, outcome on ``sim-lenient``): ``None`` is succeeded, a string the
#: exact ``invalid_request_error`` message (400 sync, ``errored`` in a batch).
ROWS: dict[str, tuple[str | None, str | None]] = {
    "system-param": (None, None),
    "custom-tool": (None, None),
    "sampling-kwargs": (None, None),
    "temperature-over-1": (
        "temperature: Expected `float` <= 1.0",
        "temperature: Expected `float` <= 1.0",
    ),
    "output-format-under-beta": (None, None),
    "output-format-without-beta": (
        "output_format: Extra inputs are not permitted",
        "output_format: Extra inputs are not permitted",
    ),
}
#: Rows the script also sends in batches (the beta row in a beta batch).
BATCH_ROWS = [
    "system-param",
    "custom-tool",
    "sampling-kwargs",
    "temperature-over-1",
    "output-format-under-beta",
]


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every row's outcome, from one run of the script under SDK 0.75."""
    workdir: Path = tmp_path_factory.mktemp("wire-old-sdk")
    upstream = ServerProcess(workdir, f"sqlite:///{workdir / 'upstream.db'}", CONFIG).start()
    relay_model = (
        f'\n[[models]]\nname = "{RELAYED}"\nengine = "anthropic"\n'
        f'base_url = "{upstream.base_url}"\napi_key = "{add_key(upstream.db_url, "relay")}"\n'
        f'upstream_model = "{LENIENT}"\n'
    )
    db = f"sqlite:///{workdir / 'batchyard.db'}"
    server = ServerProcess(workdir, db, CONFIG + relay_model).start()
    try:
        key = add_key(server.db_url, "ws-wire-old-sdk")
        completed = subprocess.run(
            [sys.executable, str(SCRIPT), server.base_url, key, RELAYED],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(OLD_PYTHON_SDK)},
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-4000:]
        result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        assert result["sdk"] == "0.75.0"
        yield result
    finally:
        server.stop()
        upstream.stop()


def check(outcome: dict[str, Any], expected: str | None, model: str) -> None:
    if expected is None:
        assert outcome["type"] == "succeeded", outcome
        assert outcome["model"] == model
    else:
        assert outcome["type"] == "errored", outcome
        assert (outcome["error_type"], outcome["message"]) == ("invalid_request_error", expected)


def expected(row: str, model: str) -> str | None:
    """Through the relay, the upstream's ``sim-lenient`` answers or refuses."""
    return ROWS[row][model != PLAIN]


@pytest.mark.parametrize("model", [PLAIN, LENIENT, RELAYED])
@pytest.mark.parametrize("row", list(ROWS))
def test_row_sync(summary: dict[str, Any], row: str, model: str) -> None:
    """0.75's ``messages.create`` / ``beta.messages.create``: an answer, or a 400 with the
    row's message (``output_format`` is a beta key: taken only under the beta header)."""
    outcome = summary["sync"][f"{row}--{model}"]
    check(outcome, expected(row, model), model)
    if outcome["type"] == "errored":
        assert outcome["status"] == 400


@pytest.mark.parametrize("model", [PLAIN, LENIENT, RELAYED])
@pytest.mark.parametrize("row", BATCH_ROWS)
def test_row_in_a_batch(summary: dict[str, Any], row: str, model: str) -> None:
    """The same params in a batch: ``succeeded``, or ``errored`` with the sync message."""
    outcome = summary["batch"][f"{row}--{model}"]
    check(outcome, expected(row, model), model)
    if outcome["type"] == "succeeded":
        assert outcome["service_tier"] == "batch"
