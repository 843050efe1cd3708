"""Adversarial review of the OpenAI surface (branch wip-review). Every test here fails while
the bug its docstring names is present; each docstring says what OpenAI does instead."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "integration"))

from harness import sim_config
from inprocess import InProcessServer, running_app
from review_helpers import CAPPED


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    async with running_app(tmp_path, sim_config(extra_models=CAPPED)) as running:
        yield running


@pytest.fixture
def make_sdk(server: InProcessServer) -> Callable[[str], Any]:
    async def make(workspace: str = "review") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{server.base_url}/v1",
            api_key=await server.add_key(workspace),
            http_client=openai.DefaultAsyncHttpxClient(
                transport=httpx2.ASGITransport(app=server.app)
            ),
            _strict_response_validation=True,
            max_retries=0,
        )

    return make
