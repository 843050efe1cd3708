"""A simulated model with ``rate_limit_rpm`` answers the sync API as a rate-limited
Anthropic endpoint does: ``anthropic-ratelimit-requests-*`` headers on every answer, and a
429 ``rate_limit_error`` with ``retry-after`` once its bucket (one second's calls) is empty."""

from __future__ import annotations

from datetime import datetime

import anthropic
import httpx
import pytest
from harness import sim_config
from inprocess import InProcessServer

#: 60 per minute: a bucket of one call, refilled once a second.
RPM = 60


@pytest.fixture
def server_config() -> str:
    return sim_config(sim_rate_limit_rpm=RPM, sim_latency_ms=0)


def _body(text: str) -> dict[str, object]:
    return {"model": "sim", "max_tokens": 8, "messages": [{"role": "user", "content": text}]}


async def test_an_answer_carries_the_limit_and_the_next_call_is_429(
    client: httpx.AsyncClient,
) -> None:
    answered = await client.post("/v1/messages", json=_body("first"))
    assert answered.status_code == 200, answered.text
    assert answered.headers["anthropic-ratelimit-requests-limit"] == str(RPM)
    assert answered.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = datetime.fromisoformat(answered.headers["anthropic-ratelimit-requests-reset"])
    assert reset.tzinfo is not None

    refused = await client.post("/v1/messages", json=_body("second"))
    assert refused.status_code == 429, refused.text
    error = refused.json()
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    assert "rate limit of 60 per minute" in error["error"]["message"]
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["anthropic-ratelimit-requests-limit"] == str(RPM)
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "anthropic-ratelimit-requests-reset" in refused.headers
    assert refused.headers["request-id"] == error["request_id"]


async def test_the_sdk_sees_a_rate_limit_error_with_its_headers(
    server: InProcessServer, api_key: str
) -> None:
    async with server.sdk(api_key=api_key, max_retries=0) as sdk:
        await sdk.messages.create(**_body("one"))  # type: ignore[call-overload]
        with pytest.raises(anthropic.RateLimitError) as refused:
            await sdk.messages.create(**_body("two"))  # type: ignore[call-overload]
    assert refused.value.response.headers["anthropic-ratelimit-requests-limit"] == str(RPM)
    assert refused.value.response.headers["retry-after"] == "1"
