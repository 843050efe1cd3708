"""Chat Completions → Messages params, and a stored ``Message`` → ``chat.completion``,
without a server. Every body the translation makes must pass the full Messages validation
(as the route and the batch worker will run it); every refusal names the chat field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsBase

from batchyard.errors import ParamsError, UnreadableAnswer
from batchyard.protocol.chat_completions import ChatCompletionRequest
from batchyard.protocol.chat_translation import (
    DEFAULT_MAX_TOKENS,
    chat_completion,
    messages_body,
)
from batchyard.protocol.messages import decode_params
from batchyard.protocol.openai_errors import openai_error

USER = {"role": "user", "content": "hi"}
PNG = "iVBORw0KGgo="
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}


def translated(*, in_batch: bool = False, **fields: Any) -> dict[str, Any]:
    body = {"model": "gpt", "messages": [USER], **fields}
    params = messages_body(json.dumps(body).encode(), in_batch=in_batch)
    decode_params(params, in_batch=in_batch)  # what the engines will read: valid Messages
    result: dict[str, Any] = json.loads(params)
    return result


def refusal(**fields: Any) -> str:
    with pytest.raises(ParamsError) as caught:
        translated(**fields)
    return caught.value.message


def test_every_key_of_the_sdks_request_is_known() -> None:
    """Strict decoding refuses unknown keys: each key the SDK can send must be declared."""
    sdk_keys = CompletionCreateParamsBase.__required_keys__ | (
        CompletionCreateParamsBase.__optional_keys__
    )
    ours = set(ChatCompletionRequest.__struct_fields__)
    assert ours == sdk_keys | {"stream"}


def test_a_plain_request() -> None:
    assert translated(max_tokens=10, temperature=0.5, top_p=0.9, stop="END", user="u-1") == {
        "model": "gpt",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }


def test_max_tokens_default_and_max_completion_tokens() -> None:
    assert translated()["max_tokens"] == DEFAULT_MAX_TOKENS
    assert translated(max_completion_tokens=7)["max_tokens"] == 7
    assert translated(stop=["a", "b"])["stop_sequences"] == ["a", "b"]


def test_system_and_developer_messages() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
        USER,
        {"role": "assistant", "content": "hello"},
        {"role": "developer", "content": "Now in French."},
        {"role": "user", "content": "again"},
    ]
    params = translated(messages=messages)
    assert params["system"] == [{"text": "Be brief."}, {"text": "Be kind."}]
    assert params["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "hello"}]},
        {"role": "system", "content": "Now in French."},
        {"role": "user", "content": "again"},
    ]


def test_images() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg", "detail": "high"}},
    ]
    params = translated(messages=[{"role": "user", "content": content}])
    assert params["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
    ]


def test_a_tool_round_trip() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    other = {**call, "id": "call_2", "function": {"name": "get_weather", "arguments": ""}}
    messages = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call, other]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "user", "content": "And so?"},
    ]
    params = translated(
        messages=messages, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False
    )
    assert params["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "rain"}],
                },
            ],
        },
        {"role": "user", "content": "And so?"},
    ]
    assert params["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
            "description": "The weather in a city.",
            "strict": True,
        }
    ]
    assert params["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice(choice: object, expected: dict[str, Any]) -> None:
    assert translated(tools=[WEATHER], tool_choice=choice)["tool_choice"] == expected


def test_a_function_without_parameters_takes_none() -> None:
    tool = {"type": "function", "function": {"name": "now"}}
    assert translated(tools=[tool])["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert translated(tools=[tool], parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


def test_response_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    json_schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert translated(response_format=json_schema)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }
    assert translated(response_format={"type": "json_object"})["output_config"] == {
        "format": {"type": "json_schema", "schema": {"type": "object"}}
    }
    assert "output_config" not in translated(response_format={"type": "text"})


def test_harmless_options_are_accepted_and_dropped() -> None:
    params = translated(
        store=True,
        metadata={"team": "a"},
        prompt_cache_key="k",
        safety_identifier="s-1",
        service_tier="auto",
        n=1,
        logprobs=False,
        presence_penalty=0,
        frequency_penalty=0.0,
        modalities=["text"],
        reasoning_effort="none",
        seed=7,
        temperature=0,
    )
    assert params == {
        "model": "gpt",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": DEFAULT_MAX_TOKENS,
        "temperature": 0.0,
        "metadata": {"user_id": "s-1"},
    }


def test_stream() -> None:
    assert translated(stream=True, stream_options={"include_usage": True})["stream"] is True
    with pytest.raises(ParamsError, match=r"^stream: streaming is not supported"):
        translated(stream=True, in_batch=True)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -1}, "frequency_penalty"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"verbosity": "low"}, "verbosity"),
        ({"service_tier": "flex"}, "service_tier"),
        ({"moderation": {"model": "omni"}}, "moderation"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"seed": 1}, "seed"),
        ({"seed": 1, "temperature": 0.7}, "seed"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"max_tokens": 5, "max_completion_tokens": 5}, "max_completion_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": -1}, "max_completion_tokens"),
        ({"stop": ["a", ""]}, "stop[1]"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"tools": [{"type": "custom", "custom": {"name": "c"}}]}, "tools[0].type"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "allowed_tools": {}}},
            "tool_choice.type",
        ),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "only"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "messages[0].name"),
        ({"messages": [{"role": "user", "content": " "}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "messages[0].content[0].text",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/tiff;base64,AA=="},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.detail",
        ),
        ({"messages": [USER, {"role": "assistant", "content": "prefill"}]}, "messages[1]"),
        ({"messages": [USER, {"role": "assistant", "content": ""}, USER]}, "messages[1]"),
        ({"messages": [USER, {"role": "assistant", "refusal": "no"}, USER]}, "messages[1].refusal"),
        (
            {
                "messages": [
                    USER,
                    {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
                    USER,
                ]
            },
            "messages[1].content[0].type",
        ),
        (
            {
                "messages": [
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "[1]"},
                            }
                        ],
                    },
                    USER,
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            {
                "messages": [
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "custom", "custom": {}}],
                    },
                    USER,
                ]
            },
            "messages[1].tool_calls[0].type",
        ),
        (
            {"messages": [USER, {"role": "function", "name": "f", "content": "x"}]},
            "messages[1].role",
        ),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x", "colour": "red"}]}, "messages[0].colour"),
        ({"model": 5}, "model"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(fields: dict[str, Any], field: str) -> None:
    message = refusal(**fields)
    assert message.startswith(f"{field}: "), message
    assert openai_error("invalid_request_error", message).error.param == field


def test_an_unknown_key_is_refused_in_openais_words() -> None:
    message = refusal(foo=1)
    assert message == "Unrecognized request argument supplied: foo"
    assert refusal(messages=None).startswith("messages: ")


def test_not_json() -> None:
    with pytest.raises(ParamsError, match=r"^Invalid JSON"):
        messages_body(b"{", in_batch=False)


# --------------------------------------------------------------------------- the answer


def message(**fields: Any) -> bytes:
    base = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 3},
    }
    return json.dumps({**base, **fields}).encode()


def rendered(raw: bytes) -> dict[str, Any]:
    body = chat_completion(raw, completion_id="chatcmpl-1", created=1_700_000_000)
    ChatCompletion.model_validate_json(body, strict=True)  # the SDK's own type, exactly
    result: dict[str, Any] = json.loads(body)
    return result


def test_a_text_answer() -> None:
    assert rendered(message()) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "claude-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 3,
            "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "system_fingerprint": None,
    }


def test_tool_calls_and_thinking() -> None:
    content = [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
    ]
    choice = rendered(message(content=content, stop_reason="tool_use"))["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]


def test_text_blocks_are_joined() -> None:
    content = [{"type": "text", "text": "a", "citations": []}, {"type": "text", "text": "b"}]
    assert rendered(message(content=content))["choices"][0]["message"]["content"] == "ab"
    assert rendered(message(content=[]))["choices"][0]["message"]["content"] == ""


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("some_future_reason", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    assert rendered(message(stop_reason=stop_reason))["choices"][0]["finish_reason"] == (
        finish_reason
    )


def test_cached_prompt_tokens_count_as_prompt_tokens() -> None:
    usage = {
        "input_tokens": 5,
        "output_tokens": 2,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
    }
    assert rendered(message(usage=usage))["usage"] == {
        "prompt_tokens": 125,
        "completion_tokens": 2,
        "total_tokens": 127,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
    }
    relayed = {"input_tokens": 5, "output_tokens": None, "cache_read_input_tokens": None}
    assert rendered(message(usage=relayed))["usage"]["total_tokens"] == 5


def test_an_unreadable_answer() -> None:
    with pytest.raises(UnreadableAnswer):
        chat_completion(b"not json", completion_id="chatcmpl-1", created=0)
