"""``GET /v1/models`` passes the SDK's strict response validation and pages like the API."""

from __future__ import annotations

import anthropic
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
