"""``POST /v1/messages/count_tokens`` through the official SDK (docs/protocol.md §15.5).

The count is the ``usage.input_tokens`` that ``messages.create`` reports for the same prompt,
on the GA and the beta resource; problems are the create route's errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from inprocess import InProcessServer

PROMPT: dict[str, Any] = {
    "system": "You sort support tickets into billing, bug or account.",
    "messages": [
        {"role": "user", "content": "My invoice shows a double charge."},
        {"role": "assistant", "content": "Which invoice?"},
        {"role": "user", "content": [{"type": "text", "text": "The one from November, twice."}]},
    ],
}


@pytest.fixture
async def sdk(server: InProcessServer, api_key: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with server.sdk(
        api_key=api_key, max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


async def test_count_equals_the_input_tokens_create_reports(
    sdk: anthropic.AsyncAnthropic,
) -> None:
    counted = await sdk.messages.count_tokens(model="sim", **PROMPT)
    message = await sdk.messages.create(model="sim", max_tokens=8, **PROMPT)
    assert counted.input_tokens > 0
    assert counted.input_tokens == message.usage.input_tokens
    beta = await sdk.beta.messages.count_tokens(model="sim", **PROMPT)
    assert beta.input_tokens == counted.input_tokens


async def test_options_the_engine_honours_count_and_the_rest_are_refused_by_name(
    sdk: anthropic.AsyncAnthropic,
) -> None:
    """The simulated engine honours tools and output formats (a count with them is the
    prompt's), not thinking or effort: a count with those is refused naming the field, as the
    create would be; so is a schema keyword it could not honour."""
    text = [{"role": "user", "content": "one two three"}]
    counted = await sdk.messages.count_tokens(
        model="sim",
        messages=text,  # type: ignore[arg-type]
        thinking={"type": "disabled"},
        cache_control={"type": "ephemeral"},
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any"},
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
    )
    assert counted.input_tokens == 3
    pattern = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}}
    refused: list[tuple[dict[str, Any], str]] = [
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "thinking: 'enabled'"),
        ({"output_config": {"effort": "low"}}, "output_config.effort: "),
        (
            {"output_config": {"format": {"type": "json_schema", "schema": pattern}}},
            "output_config.format.schema.properties.code.pattern: ",
        ),
    ]
    for options, message in refused:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await sdk.messages.count_tokens(model="sim", messages=text, **options)  # type: ignore[arg-type]
        assert caught.value.body["error"]["message"].startswith(message)  # type: ignore[index]
        assert "not supported by" in caught.value.body["error"]["message"]  # type: ignore[index]


async def test_problems_are_the_create_routes_errors(sdk: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        await sdk.messages.count_tokens(model="no-such-model", **PROMPT)
    assert missing.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: no-such-model"},
        "request_id": missing.value.request_id,
    }
    with pytest.raises(anthropic.BadRequestError) as blank:
        await sdk.messages.count_tokens(model="sim", messages=[{"role": "user", "content": ""}])
    assert blank.value.body["error"]["message"] == (  # type: ignore[index]
        "messages.0: all messages must have non-empty content except for the optional final "
        "assistant message"
    )
    with pytest.raises(anthropic.BadRequestError) as generating:
        await sdk.messages.count_tokens(model="sim", extra_body={"max_tokens": 8}, **PROMPT)
    assert generating.value.body["error"] == {  # type: ignore[index]
        "type": "invalid_request_error",
        "message": "max_tokens: Extra inputs are not permitted",
    }


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param({"model": "sim"}, 400, "messages: Field required", id="no-messages"),
        pytest.param(
            {"model": "sim", "messages": [{"role": "user", "content": 5}]},
            400,
            "messages.0.content: Expected `str | array`, got `int`",
            id="bad-content",
        ),
        pytest.param(
            {"model": "sim", "messages": []},
            400,
            "messages: List should have at least 1 item",
            id="empty-messages",
        ),
        pytest.param(
            {**PROMPT, "model": "sim", "stream": True},
            400,
            "stream: Extra inputs are not permitted",
            id="stream",
        ),
    ],
)
async def test_bad_bodies_name_the_field(
    server: InProcessServer, api_key: str, body: dict[str, Any], status: int, message: str
) -> None:
    async with server.client(api_key) as http:
        response = await http.post("/v1/messages/count_tokens", json=body)
    assert response.status_code == status
    assert response.json()["error"] == {"type": "invalid_request_error", "message": message}
    assert response.headers["request-id"] == response.json()["request_id"]


async def test_old_beta_query_is_ignored_and_auth_is_required(
    server: InProcessServer, api_key: str
) -> None:
    """SDKs up to 2.2 send ``?beta=true`` on the beta resource (§1.3)."""
    body = {"model": "sim", "messages": [{"role": "user", "content": "a b c d"}]}
    async with server.client(api_key) as http:
        response = await http.post("/v1/messages/count_tokens?beta=true", json=body)
    assert response.status_code == 200
    assert response.json() == {"input_tokens": 4}
    assert response.headers["content-type"] == "application/json"
    async with server.client() as anonymous:
        refused = await anonymous.post("/v1/messages/count_tokens", json=body)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"


async def test_an_oversized_body_is_refused_before_it_is_read(
    server: InProcessServer, api_key: str
) -> None:
    async with server.client(api_key) as http:
        response = await http.post(
            "/v1/messages/count_tokens",
            content=b"{}",
            headers={"content-length": str(32 * 1024 * 1024 + 1)},
        )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
