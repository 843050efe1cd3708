"""The openai engine's translation, both ways, without a server.

Requests are built from bodies the full validator took (as the engine gets them); answers
are the exact JSON that OpenAI-compatible servers send, each marked with its source: OpenAI's
API reference, vLLM (``stop_reason``), SGLang (``matched_stop``), ``transformers serve``
(the stop string kept in the text, errors as ``{"detail": …}``). The same engine against a
real ``transformers serve`` is tested in tests/e2e/test_openai_upstream.py.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgspec
import pytest

from batchyard.config import ModelConfig
from batchyard.engines.openai_http import (
    OpenAIEngine,
    StreamedAnswer,
    answer_message,
    chat_request,
    upstream_error,
)
from batchyard.engines.registry import ModelRegistry
from batchyard.errors import ConfigError, EngineError, ParamsError, UnreadableAnswer
from batchyard.protocol.messages import (
    MessageCreateParams,
    decode_count_tokens_params,
    decode_params,
)
from batchyard.protocol.openai_chat import ChatCompletion, ChatCompletionChunk

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PNG = "iVBORw0KGgo="


def params(**fields: Any) -> MessageCreateParams:
    body = {"model": "gpt", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return decode_params(json.dumps({**body, **fields}).encode(), in_batch=False)


def translated(**fields: Any) -> dict[str, Any]:
    request = chat_request(params(**fields), "upstream-model", top_k=False)
    result: dict[str, Any] = msgspec.to_builtins(request)
    return result


def test_a_plain_request() -> None:
    assert translated(temperature=0.5, top_p=0.9, metadata={"user_id": "u-1"}) == {
        "model": "upstream-model",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 16,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u-1",
    }


def test_system_prompts_as_strings_blocks_and_turns() -> None:
    request = translated(
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": "ok"},
            {"role": "system", "content": "Now answer in French."},
            {"role": "user", "content": "c"},
        ],
    )
    assert request["messages"] == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "Now answer in French."},
        {"role": "user", "content": "c"},
    ]
    assert translated(system="Be brief.")["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }


def test_images_become_image_url_parts() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What are these?", "cache_control": {"type": "ephemeral"}},
    ]
    request = translated(messages=[{"role": "user", "content": content}])
    assert request["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "What are these?"},
            ],
        }
    ]


def test_tools_tool_use_and_tool_results() -> None:
    request = translated(
        tools=[{**WEATHER_TOOL, "strict": True, "cache_control": {"type": "ephemeral"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Looking."},
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "call_2",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18 C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_2",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "no station"},
                            {"type": "text", "text": "retry"},
                        ],
                    },
                    {"type": "text", "text": "Summarise."},
                ],
            },
        ],
    )
    assert request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "The weather in a city.",
                "strict": True,
            },
        }
    ]
    assert request["tool_choice"] == "required" and request["parallel_tool_calls"] is False
    assert request["messages"][1:] == [
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "type": "function",
                    "id": "call_1",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "type": "function",
                    "id": "call_2",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "Error: no station\nretry"},
        {"role": "user", "content": "Summarise."},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "any"}, "required"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: object) -> None:
    request = translated(tools=[WEATHER_TOOL], tool_choice=choice)
    assert request["tool_choice"] == expected and "parallel_tool_calls" not in request


def test_stop_sequences_and_top_k_when_the_server_takes_it() -> None:
    request = chat_request(params(stop_sequences=["\n\n", "END"], top_k=5), "m", top_k=True)
    assert request.stop == ["\n\n", "END"] and request.top_k == 5
    assert "top_k" not in translated()


def test_an_empty_final_assistant_turn_asks_for_nothing() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]
    assert translated(messages=messages)["messages"] == [{"role": "user", "content": "hi"}]


REFUSED = {
    "top_k": ({"top_k": 5}, "top_k: not supported by gpt"),
    "thinking": (
        {"max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024}},
        "thinking: ",
    ),
    "output format": (
        {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
        "output_config.format: ",
    ),
    "container": ({"container": "c"}, "container: "),
    "server tool": (
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        "tools.0: tools of type 'web_search_20250305' are not supported by gpt",
    ),
    "tool option": (
        {"tools": [{**WEATHER_TOOL, "defer_loading": True}]},
        "tools.0.defer_loading: ",
    ),
    "document": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                        }
                    ],
                }
            ]
        },
        "messages.0.content.0: content blocks of type 'document' are not supported by gpt",
    ),
    "image by file id": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ]
        },
        "messages.0.content.0.source: images of source type 'file' are not supported by gpt",
    ),
    "image in a tool result": (
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [
                                {
                                    "type": "image",
                                    "source": {
                                        "type": "base64",
                                        "media_type": "image/png",
                                        "data": PNG,
                                    },
                                }
                            ],
                        }
                    ],
                },
            ]
        },
        "messages.1.content.0.content.0: content blocks of type 'image' are not supported by gpt",
    ),
    "prefill": (
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Sure,"},
            ]
        },
        "messages.1: a final assistant turn (prefill) is not supported by gpt",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_cannot_be_translated_is_refused_by_name(case: str) -> None:
    fields, message = REFUSED[case]
    with pytest.raises(ParamsError) as caught:
        chat_request(params(**fields), "m", top_k=False)
    assert caught.value.message.startswith(message), caught.value.message


def test_max_tokens_zero_is_refused() -> None:
    with pytest.raises(ParamsError, match="max_tokens: 0 is not supported by gpt"):
        chat_request(params(max_tokens=0), "m", top_k=False)


# --------------------------------------------------------------------------- answers


def answer(raw: dict[str, Any], **fields: Any) -> dict[str, Any]:
    completion = msgspec.convert(raw, ChatCompletion)
    result: dict[str, Any] = msgspec.to_builtins(answer_message(completion, params(**fields)))
    return result


def completion(message: dict[str, Any], finish_reason: str | None, **choice: Any) -> dict[str, Any]:
    """A chat completion as OpenAI's API reference shows it (plus a server's own keys)."""
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "refusal": None, **message},
                "logprobs": None,
                "finish_reason": finish_reason,
                **choice,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    }


def test_a_text_answer() -> None:
    message = answer(completion({"content": "Hello there."}, "stop"))
    assert message["type"] == "message" and message["id"].startswith("msg_")
    assert message["model"] == "gpt" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": "Hello there.", "citations": None}]
    assert message["stop_reason"] == "end_turn" and message["stop_sequence"] is None
    assert message["usage"]["input_tokens"] == 9 and message["usage"]["output_tokens"] == 12


def test_tool_calls_become_tool_use_blocks() -> None:
    """OpenAI's reference answer to a request with tools (content null, finish_reason
    tool_calls); a server that says "stop" beside tool calls is read the same way."""
    calls = [
        {
            "id": "call_abc",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "", "type": "function", "function": {"name": "now", "arguments": ""}},
    ]
    for finish in ("tool_calls", "stop"):
        message = answer(completion({"content": None, "tool_calls": calls}, finish))
        first, second = message["content"]
        assert first == {
            "type": "tool_use",
            "id": "call_abc",
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
        assert (
            second["name"] == "now" and second["input"] == {} and second["id"].startswith("toolu_")
        )
        assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("arguments", ['{"city": "Par', '["Paris"]'])
def test_tool_arguments_that_are_not_a_json_object_are_an_api_error(arguments: str) -> None:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    with pytest.raises(EngineError) as caught:
        answer(completion({"content": None, "tool_calls": [call]}, "tool_calls"))
    assert caught.value.error_type == "api_error" and caught.value.retryable
    assert "get_weather" in caught.value.message


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
def test_finish_reasons(finish: str, stop_reason: str) -> None:
    assert answer(completion({"content": "x"}, finish))["stop_reason"] == stop_reason


def test_an_unknown_finish_reason_is_a_retryable_api_error() -> None:
    with pytest.raises(EngineError, match="'abort'") as caught:
        answer(completion({"content": "x"}, "abort"))  # vLLM's, for an aborted request
    assert caught.value.retryable


STOPS = {"stop_sequences": ["END", "\n\n"]}


def test_the_stop_sequence_a_server_reports() -> None:
    vllm = completion({"content": "1 2"}, "stop", stop_reason="END")
    sglang = completion({"content": "1 2"}, "stop", matched_stop="\n\n")
    assert (answer(vllm, **STOPS)["stop_reason"], answer(vllm, **STOPS)["stop_sequence"]) == (
        "stop_sequence",
        "END",
    )
    assert answer(sglang, **STOPS)["stop_sequence"] == "\n\n"
    # vLLM's stop_reason is a token id, or null, when no stop string ended the answer.
    eos = completion({"content": "1 2"}, "stop", stop_reason=2)
    assert answer(eos, **STOPS)["stop_reason"] == "end_turn"


def test_a_stop_sequence_kept_in_the_text_is_found_and_cut() -> None:
    """``transformers serve`` leaves the stop string at the end of the text."""
    message = answer(completion({"content": "1 2 END"}, "stop"), **STOPS)
    assert message["content"][0]["text"] == "1 2 "
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")


def test_an_answer_without_choices_is_unreadable() -> None:
    with pytest.raises(UnreadableAnswer):
        answer({"choices": [], "usage": None})


# --------------------------------------------------------------------------- streams


class Sink:
    def __init__(self) -> None:
        self.pieces: list[str] = []

    def prompt_read(self, input_tokens: int) -> None:
        raise AssertionError("the openai engine learns the prompt's count only at the end")

    def text(self, piece: str) -> None:
        self.pieces.append(piece)


def chunk(
    choices: list[dict[str, Any]], usage: dict[str, int] | None = None
) -> ChatCompletionChunk:
    """A ``chat.completion.chunk`` as OpenAI's API reference shows it."""
    return msgspec.convert(
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": choices,
            "usage": usage,
        },
        ChatCompletionChunk,
    )


def delta(content: str | None = None, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": 0, "delta": {"content": content, **fields}, "finish_reason": finish}


def test_a_stream_passes_text_on_and_ends_as_a_whole_answer() -> None:
    sink = Sink()
    stream = StreamedAnswer([], sink)
    for piece in [delta("", role="assistant"), delta("Hel"), delta("lo"), delta(None, "stop")]:
        stream.feed(chunk([piece]))
    stream.feed(chunk([], usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}))
    assert sink.pieces == ["Hel", "lo"]
    message = answer_message(stream.completion(), params())
    assert message.content[0].text == "Hello"  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 2)


def test_a_stream_holds_back_what_may_be_a_stop_sequence() -> None:
    """The stop string arrives in pieces and stays in the text (``transformers serve``)."""
    sink = Sink()
    stream = StreamedAnswer(["END"], sink)
    for piece in ["1 E", "2 ", "E", "N", "D"]:
        stream.feed(chunk([delta(piece)]))
    stream.feed(chunk([delta(None, "stop")], usage={"prompt_tokens": 3, "completion_tokens": 5}))
    message = answer_message(stream.completion(), params(stop_sequences=["END"]))
    assert "".join(sink.pieces) == "1 E2 " == message.content[0].text  # type: ignore[union-attr]
    assert message.stop_sequence == "END"


def test_a_streamed_tool_call_is_put_together() -> None:
    """OpenAI's streamed tool call: id and name first, the arguments in pieces."""
    sink = Sink()
    stream = StreamedAnswer([], sink)
    start = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    stream.feed(chunk([delta(None, role="assistant", tool_calls=[start])]))
    for piece in ['{"ci', 'ty": "Paris"}']:
        stream.feed(chunk([delta(tool_calls=[{"index": 0, "function": {"arguments": piece}}])]))
    stream.feed(chunk([delta(None, "tool_calls")]))
    message = answer_message(stream.completion(), params())
    assert sink.pieces == [] and message.stop_reason == "tool_use"
    assert msgspec.to_builtins(message.content) == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
    ]


def test_a_stream_that_fails_or_stops_short() -> None:
    with pytest.raises(EngineError, match="out of memory"):
        StreamedAnswer([], Sink()).feed(
            msgspec.convert({"error": "out of memory"}, ChatCompletionChunk)
        )
    stream = StreamedAnswer([], Sink())
    stream.feed(chunk([delta("Hel")]))
    with pytest.raises(UnreadableAnswer):
        stream.completion()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (400, "invalid_request_error", False),
        (401, "invalid_request_error", False),
        (404, "invalid_request_error", False),
        (422, "invalid_request_error", False),
        (429, "rate_limit_error", True),
        (500, "api_error", True),
        (503, "api_error", True),
        (504, "timeout_error", True),
    ],
)
def test_upstream_errors(status: int, error_type: str, retryable: bool) -> None:
    """Retried refusals keep the upstream's retry-after and rate-limit state (for pacing)."""
    body = {"error": {"message": "bad things", "type": "invalid_request_error", "code": None}}
    error = upstream_error(
        httpx.Response(status, headers={"retry-after": "7"}), json.dumps(body).encode()
    )
    assert (error.error_type, error.retryable) == (error_type, retryable)
    assert error.message == f"upstream answered HTTP {status}: bad things"
    assert error.retry_after == (7 if status in (429, 500, 503) else None)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            b'{"object": "error", "message": "too long", "type": "BadRequestError", "code": 400}',
            "too long",
        ),
        (
            b'{"detail": "Unexpected fields in the request: {\'top_k\'}"}',
            "Unexpected fields in the request: {'top_k'}",
        ),
        (b"Internal Server Error", "Internal Server Error"),
    ],
)
def test_upstream_error_bodies_of_every_shape(body: bytes, detail: str) -> None:
    assert (
        upstream_error(httpx.Response(400), body).message == f"upstream answered HTTP 400: {detail}"
    )


# --------------------------------------------------------------------------- count_tokens


async def test_count_tokens_asks_vllms_tokenize_route() -> None:
    """vLLM's ``POST /tokenize`` (at its root): ``{"count", "max_model_len", "tokens"}``."""
    seen: list[httpx.Request] = []

    def vllm(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"count": 17, "max_model_len": 4096, "tokens": [1] * 17, "token_strs": None}
        )

    engine = OpenAIEngine.from_config(
        ModelConfig(
            name="gpt",
            engine="openai",
            options={"base_url": "http://gpu:8000/v1", "upstream_model": "qwen"},
        )
    )
    engine._client = httpx.AsyncClient(transport=httpx.MockTransport(vllm))  # vLLM's answers
    count_params = decode_count_tokens_params(
        json.dumps(
            {"model": "gpt", "system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]}
        ).encode()
    )
    try:
        assert await engine.count_tokens(count_params) == 17
    finally:
        await engine.aclose()
    assert str(seen[0].url) == "http://gpu:8000/tokenize"
    assert json.loads(seen[0].content) == {
        "model": "qwen",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }


# --------------------------------------------------------------------------- config


def test_registered_with_its_options_checked() -> None:
    served = ModelRegistry([ModelConfig(name="gpt", engine="openai")]).get("gpt")
    assert served is not None and isinstance(served.engine, OpenAIEngine)
    # Its calls go to another server: paced by that server's rate limits, 64 in flight.
    assert served.upstream and served.concurrency == 64
    info = served.model_info("gpt")
    assert info.capabilities is not None and info.capabilities.image_input.supported  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"models\.gpt: .*api_key_variable"):
        ModelRegistry([ModelConfig(name="gpt", engine="openai", options={"api_key_variable": "X"})])


def test_a_429_carries_the_upstreams_rate_limits_for_pacing() -> None:
    """OpenAI's ``x-ratelimit-*`` headers on a refusal reach the pacer (as ``limits``)."""
    headers = {
        "x-ratelimit-limit-requests": "3000",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20ms",
        "retry-after": "1",
    }
    error = upstream_error(httpx.Response(429, headers=headers), b"{}")
    assert error.limits is not None and error.retry_after == 1.0
    assert error.limits.quotas["requests"].limit == 3000
