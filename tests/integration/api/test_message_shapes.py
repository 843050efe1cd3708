"""The shape of `POST /v1/messages` answers: streamed and plain alike, nothing generated."""

from __future__ import annotations

from inprocess import InProcessServer


async def test_the_sdk_final_streamed_message_has_the_plain_messages_usage(
    server: InProcessServer, api_key: str
) -> None:
    async with server.sdk(api_key=api_key) as client:
        request = {
            "model": "sim",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "count to three"}],
        }
        plain = await client.messages.create(**request)  # type: ignore[call-overload]
        async with client.messages.stream(**request) as stream:  # type: ignore[arg-type]
            streamed = await stream.get_final_message()
    assert streamed.usage.model_dump() == plain.usage.model_dump()
    assert streamed.usage.service_tier == "standard"
    assert streamed.usage.cache_read_input_tokens == 0
    assert streamed.usage.cache_creation is not None
    assert streamed.stop_reason == plain.stop_reason


async def test_max_tokens_zero_answers_with_no_content(
    server: InProcessServer, api_key: str
) -> None:
    async with server.client(api_key) as http:
        response = await http.post(
            "/v1/messages",
            json={
                "model": "sim",
                "max_tokens": 0,
                "messages": [{"role": "user", "content": "hello"}],
            },
        )
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["content"] == [] and message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 0
