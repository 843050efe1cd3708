"""What the official SDK reads of every OpenAI-surface answer beyond its body: the request
id, the status, the error code."""

from __future__ import annotations

import openai
import pytest
from harness import sim_config
from openai_sdk import MakeSdk

#: A model whose engine is always overloaded.
BUSY = '\n[[models]]\nname = "busy"\nengine = "simulated"\noverloaded_rate = 1.0\n'


@pytest.fixture
def server_config() -> str:
    return sim_config(extra_models=BUSY)


async def test_sdk_sees_the_request_id(make_sdk: MakeSdk) -> None:
    """Answers and errors carry ``x-request-id``, the header OpenAI sends and the SDKs read
    into ``completion._request_id`` and ``APIError.request_id``: the id users are told to
    log and quote."""
    client = await make_sdk()
    completion = await client.chat.completions.create(
        model="sim", max_tokens=4, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion._request_id is not None
    with pytest.raises(openai.NotFoundError) as caught:
        await client.batches.retrieve("batch_nope")
    assert caught.value.request_id is not None


async def test_overloaded_is_503(make_sdk: MakeSdk) -> None:
    """An overloaded engine answers 503, as OpenAI does, not Anthropic's 529: generic
    OpenAI-compatible clients and proxies retry 429/500/502/503/504, not 529."""
    client = await make_sdk()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(
            model="busy", max_tokens=4, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 503, caught.value.body


async def test_unknown_model_is_model_not_found(make_sdk: MakeSdk) -> None:
    """An unknown model is a 404 with ``code: "model_not_found"``, as OpenAI answers it;
    clients branch on that code, e.g. to fall back to another model."""
    client = await make_sdk()
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(
            model="nope", max_tokens=4, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "model_not_found", caught.value.body
