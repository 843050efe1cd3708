"""The OpenAI surface through the official ``openai`` SDK, on the app in process.

``server`` is tests/integration's (set a module's ``server_config`` for other models);
``make_sdk`` gives SDK clients on it that validate every answer against the SDK's types and
never retry, so a test sees the first answer as it came.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from inprocess import InProcessServer
from openai_sdk import MakeSdk


@pytest.fixture
async def make_sdk(server: InProcessServer) -> AsyncIterator[MakeSdk]:
    """Each call: a client with a fresh key; all of them are closed after the test."""
    made: list[openai.AsyncOpenAI] = []

    async def make() -> openai.AsyncOpenAI:
        sdk = server.openai_sdk(api_key=await server.add_key("openai"), max_retries=0)
        made.append(sdk)
        return sdk

    yield make
    for sdk in made:
        await sdk.close()
