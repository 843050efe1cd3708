"""``GET /v1/models`` passes the SDK's strict response validation and pages like the API."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest
from inprocess import InProcessServer


async def test_models_list_strict_and_paged(server: InProcessServer, api_key: str) -> None:
    async with server.sdk(api_key=api_key, _strict_response_validation=True) as client:
        assert [model.id async for model in client.models.list(limit=1)] == ["sim", "sim-slow"]
        page = await client.models.list(limit=1)
        assert page.has_more and len(page.data) == 1
        info = await client.models.retrieve("sim")
        # No configured cap and none of the simulated engine's own: unknown, so null.
        assert info.lifecycle == "active" and info.max_tokens is None
        # What the engine honours, in the API's shape (validated strictly by the SDK): the
        # simulated engine reads text and writes text, tool calls and JSON, nothing more.
        capabilities = info.capabilities
        assert capabilities is not None and capabilities.batch.supported
        assert not capabilities.thinking.supported and capabilities.thinking.types.disabled
        assert capabilities.structured_outputs.supported
        assert not capabilities.image_input.supported
        with pytest.raises(anthropic.NotFoundError):
            await client.models.retrieve("nope")


async def test_models_list_refuses_both_cursors_like_the_batch_list(
    server: InProcessServer, api_key: str
) -> None:
    async with server.client(api_key) as http:
        response = await http.get("/v1/models", params={"after_id": "sim", "before_id": "sim"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "after_id and before_id cannot be used together",
    }


async def test_the_same_route_answers_the_openai_sdk(server: InProcessServer, api_key: str) -> None:
    """One answer parses as both SDKs' types; an OpenAI client's errors come in OpenAI's
    envelope (it sends no ``anthropic-version``)."""
    client = openai.AsyncOpenAI(
        base_url=f"{server.base_url}/v1",
        api_key=api_key,
        http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=server.app)),
        _strict_response_validation=True,
    )
    async with client:
        models = [model async for model in client.models.list()]
        assert [(m.id, m.object, m.owned_by) for m in models] == [
            ("sim", "model", "batchyard"),
            ("sim-slow", "model", "batchyard"),
        ]
        assert (await client.models.retrieve("sim")).id == "sim"
        with pytest.raises(openai.NotFoundError) as missing:
            await client.models.retrieve("nope")
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["message"] == "model: nope"
    assert missing.value.body["type"] == "invalid_request_error"
