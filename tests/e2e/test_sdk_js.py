"""The official JS SDKs against a real server: ``@anthropic-ai/sdk`` (1.14.0 and 0.137.0) and
``openai`` (7.59.0)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import ServerProcess

JS_DIR = Path(__file__).with_name("js")


@pytest.mark.parametrize("package", ["@anthropic-ai/sdk", "anthropic-sdk-0x"])
def test_js_sdk_scenario(package: str, sim_server: ServerProcess, api_key: str) -> None:
    node = shutil.which("node")
    assert node, "node is required (the Makefile installs the SDKs with npm)"
    completed = subprocess.run(
        [node, "scenario.mjs", package, sim_server.base_url, api_key],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["results"] == 3 and summary["listed"] == 7 and summary["canceled"] > 0


def test_openai_node_sdk_flow(sim_server: ServerProcess, api_key: str) -> None:
    """The official ``openai`` Node SDK: files, batches (cancel and a failed file included)
    and chat completions, plain and streamed, on the simulated engine."""
    node = shutil.which("node")
    assert node, "node is required (the Makefile installs the SDKs with npm)"
    completed = subprocess.run(
        [
            node,
            "openai_flow.mjs",
            f"{sim_server.base_url}/v1",
            api_key,
            "sim",
            "sim-slow",
            "8",
            "0",
        ],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["results"] == 20 and summary["listed"] >= 3
