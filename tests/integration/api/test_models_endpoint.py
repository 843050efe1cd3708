"""``GET /v1/models`` passes the SDK's strict response validation and pages like the API;
batchyard's ``pricing`` extension reaches both SDKs' clients."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest
from harness import sim_config
from inprocess import InProcessServer

PRICING = {"input_per_mtok": 1.5, "output_per_mtok": 7.5, "batch_discount": 0.5}


@pytest.fixture
def server_config() -> str:
    """``sim`` priced; ``sim-slow`` left at the default 0 (run here, so free)."""
    return sim_config(
        sim_price_input_per_mtok=PRICING["input_per_mtok"],
        sim_price_output_per_mtok=PRICING["output_per_mtok"],
    )


def openai_sdk(server: InProcessServer, api_key: str) -> openai.AsyncOpenAI:
    """OpenAI's SDK on the in-process app, validating answers strictly."""
    return openai.AsyncOpenAI(
        base_url=f"{server.base_url}/v1",
        api_key=api_key,
        http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=server.app)),
        _strict_response_validation=True,
    )


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
    client = openai_sdk(server, api_key)
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


async def test_pricing_is_an_extension_both_sdks_keep(
    server: InProcessServer, api_key: str
) -> None:
    """Neither SDK's ``Model`` type declares ``pricing``; both keep unknown keys (pydantic
    ``extra="allow"``), so the configured prices parse unchanged under strict validation and
    are read as an extra field. A model run here with no price configured reports zeros."""
    async with server.sdk(api_key=api_key, _strict_response_validation=True) as client:
        priced = await client.models.retrieve("sim")
        free = await client.models.retrieve("sim-slow")
        listed = [model async for model in client.models.list()]
    assert priced.model_extra is not None and priced.model_extra["pricing"] == PRICING
    assert free.model_extra is not None and free.model_extra["pricing"] == {
        "input_per_mtok": 0.0,
        "output_per_mtok": 0.0,
        "batch_discount": 0.5,
    }
    assert [model.model_extra["pricing"] for model in listed if model.model_extra] == [
        PRICING,
        free.model_extra["pricing"],
    ]
    openai_client = openai_sdk(server, api_key)
    async with openai_client:
        model = await openai_client.models.retrieve("sim")
    assert model.model_extra is not None and model.model_extra["pricing"] == PRICING
