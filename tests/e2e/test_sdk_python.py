"""The official Python SDK, latest and 0.75, driving a real ``batchyard serve`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import OLD_PYTHON_SDK, ServerProcess

SCRIPT = Path(__file__).with_name("sdk_scenarios.py")
SDKS = {"latest": None, "0.75": OLD_PYTHON_SDK}


def run_scenario(sdk: str, scenario: str, server: ServerProcess, key: str) -> dict[str, object]:
    env = dict(os.environ)
    if SDKS[sdk] is not None:
        env["PYTHONPATH"] = str(SDKS[sdk])
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), scenario, server.base_url, key],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return summary


@pytest.mark.parametrize("sdk", sorted(SDKS))
@pytest.mark.parametrize("scenario", ["classify", "paginate", "cancel", "delete", "count_tokens"])
def test_sdk_scenario(sdk: str, scenario: str, sim_server: ServerProcess, api_key: str) -> None:
    summary = run_scenario(sdk, scenario, sim_server, api_key)
    if sdk == "0.75":
        assert summary["sdk"] == "0.75.0"
    assert summary["scenario"] == scenario
