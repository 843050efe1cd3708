"""``decode_params``, ``describe_validation_error`` and ``json_path``: Messages params checks.

Each problem surfaces as a :class:`ParamsError` whose message is ``<dotted.path>: <reason>``
(docs/protocol.md §6.4 and §7); in a batch it becomes an ``errored`` result, so the path and the
batch-only rules (§5.2) are what users see.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from batchyard.errors import ParamsError
from batchyard.protocol.messages import (
    MessageCreateParams,
    SystemBlockParam,
    decode_params,
    describe_validation_error,
    json_path,
)

USER = [{"role": "user", "content": "hello"}]


def params(**fields: Any) -> bytes:
    """A valid body with ``fields`` changed; a value of ``...`` removes the key."""
    value: dict[str, Any] = {"model": "sim", "max_tokens": 16, "messages": USER}
    value.update(fields)
    return json.dumps({k: v for k, v in value.items() if v is not ...}).encode()


def problem(raw: bytes, *, in_batch: bool = True) -> ParamsError:
    with pytest.raises(ParamsError) as caught:
        decode_params(raw, in_batch=in_batch)
    return caught.value


def message_of(raw: bytes, *, in_batch: bool = True) -> str:
    error = problem(raw, in_batch=in_batch)
    assert error.error_type == "invalid_request_error"
    return error.message


# ------------------------------------------------------------------------------ json_path


@pytest.mark.parametrize(
    ("msgspec_path", "expected"),
    [
        ("$", ""),
        ("$.model", "model"),
        ("$.messages[0]", "messages.0"),
        ("$.messages[12].content[3].text", "messages.12.content.3.text"),
        ("$[4]", "4"),
        ("$[0][1]", "0.1"),
        ("$.requests[3].custom_id", "requests.3.custom_id"),
        ("", ""),
    ],
)
def test_json_path(msgspec_path: str, expected: str) -> None:
    assert json_path(msgspec_path) == expected


# ------------------------------------------------------------------------------ describe


def validation_error(raw: bytes, type_: Any) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=type_)
    return caught.value


class _Inner(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class _Outer(msgspec.Struct, forbid_unknown_fields=True):
    items: list[_Inner]


def test_describe_missing_field_nested() -> None:
    error = validation_error(b'{"items": [{"name": "a"}, {}]}', _Outer)
    assert describe_validation_error(error) == "items.1.name: Field required"


def test_describe_missing_field_top_level() -> None:
    assert describe_validation_error(validation_error(b"{}", _Outer)) == "items: Field required"


def test_describe_unknown_field_nested_and_top_level() -> None:
    nested = validation_error(b'{"items": [{"name": "a", "x": 1}]}', _Outer)
    assert describe_validation_error(nested) == "items.0.x: Extra inputs are not permitted"
    top = validation_error(b'{"items": [], "y": 2}', _Outer)
    assert describe_validation_error(top) == "y: Extra inputs are not permitted"


def test_describe_wrong_type_keeps_msgspec_reason_after_the_path() -> None:
    error = validation_error(b'{"items": [{"name": 5}]}', _Outer)
    assert describe_validation_error(error) == "items.0.name: Expected `str`, got `int`"


def test_describe_malformed_json() -> None:
    with pytest.raises(msgspec.DecodeError) as caught:
        msgspec.json.decode(b"{", type=_Outer)
    assert describe_validation_error(caught.value).startswith("Invalid JSON: ")


def test_describe_top_level_type_mismatch_is_not_called_invalid_json() -> None:
    """``[]`` is valid JSON; a wrong top-level type must not be reported as malformed."""
    error = validation_error(b"[]", _Outer)
    described = describe_validation_error(error)
    assert "Invalid JSON" not in described, described
    assert "Expected `object`, got `array`" in described


# ------------------------------------------------------------------------------ accepted


def test_minimal_valid_params() -> None:
    decoded = decode_params(params(), in_batch=True)
    assert isinstance(decoded, MessageCreateParams)
    assert (decoded.model, decoded.max_tokens, decoded.messages[0].content) == ("sim", 16, "hello")


def test_accepts_msgspec_raw_input() -> None:
    assert decode_params(msgspec.Raw(params()), in_batch=True).model == "sim"


def test_full_featured_params_are_accepted() -> None:
    raw = params(
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": 1}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"}],
            },
        ],
        temperature=0.0,
        top_p=1.0,
        top_k=0,
        stop_sequences=["END"],
        stream=False,
        metadata={"user_id": "u" * 512},
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        max_tokens=2048,
        service_tier="auto",
    )
    decoded = decode_params(raw, in_batch=True)
    assert decoded.system is not None and isinstance(decoded.system[0], SystemBlockParam)


def test_empty_final_assistant_message_is_allowed() -> None:
    raw = params(messages=[*USER, {"role": "assistant", "content": ""}])
    assert len(decode_params(raw, in_batch=True).messages) == 2


def test_consecutive_same_role_turns_are_allowed() -> None:
    raw = params(messages=[*USER, *USER])
    assert len(decode_params(raw, in_batch=True).messages) == 2


def test_stream_false_is_fine_in_a_batch() -> None:
    assert decode_params(params(stream=False), in_batch=True).stream is False


def test_batch_only_rules_do_not_apply_to_sync_messages() -> None:
    """``stream: true``, ``speed`` and ``max_tokens: 0`` are legal on ``POST /v1/messages``."""
    decoded = decode_params(params(stream=True, speed="fast", max_tokens=0), in_batch=False)
    assert (decoded.stream, decoded.speed, decoded.max_tokens) == (True, "fast", 0)


# ------------------------------------------------------------------------------ rejected

REJECTED = [
    pytest.param(params(max_tokens=...), "max_tokens: Field required", id="missing-max_tokens"),
    pytest.param(params(model=...), "model: Field required", id="missing-model"),
    pytest.param(params(messages=...), "messages: Field required", id="missing-messages"),
    pytest.param(
        params(max_tokens="16"), "max_tokens: Expected `int`, got `str`", id="max_tokens-string"
    ),
    pytest.param(
        params(max_tokens=1.5), "max_tokens: Expected `int`, got `float`", id="max_tokens-float"
    ),
    pytest.param(params(foo=1), "foo: Extra inputs are not permitted", id="unknown-key"),
    pytest.param(
        params(output_format={}),
        "output_format: Extra inputs are not permitted",
        id="output_format",
    ),
    pytest.param(params(store=True), "store: Extra inputs are not permitted", id="store"),
    pytest.param(
        params(messages=[{"role": "robot", "content": "x"}]),
        "messages.0.role: Invalid value 'robot'",
        id="unknown-role",
    ),
    pytest.param(
        params(messages=[{"role": "user"}]),
        "messages.0.content: Field required",
        id="missing-content",
    ),
    pytest.param(
        params(messages=[{"role": "user", "content": [{"type": "bogus"}]}]),
        "messages.0.content.0.type: Invalid value 'bogus'",
        id="unknown-block-type",
    ),
    pytest.param(
        params(messages=[]), "messages: List should have at least 1 item", id="empty-messages"
    ),
    pytest.param(
        params(messages=[{"role": "user", "content": ""}]),
        "messages.0: all messages must have non-empty content except for the "
        "optional final assistant message",
        id="empty-content",
    ),
    pytest.param(
        params(
            messages=[*USER, {"role": "assistant", "content": "a"}, {"role": "user", "content": []}]
        ),
        "messages.2: all messages must have non-empty content except for the "
        "optional final assistant message",
        id="empty-block-list",
    ),
    pytest.param(
        params(messages=[{"role": "user", "content": "   "}]),
        "messages.0: all messages must have non-empty content except for the "
        "optional final assistant message",
        id="whitespace-content",
    ),
    pytest.param(
        params(messages=[{"role": "assistant", "content": ""}, *USER]),
        "messages.0: all messages must have non-empty content except for the "
        "optional final assistant message",
        id="empty-non-final-assistant",
    ),
    pytest.param(
        params(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "messages: text content blocks must be non-empty",
        id="empty-text-block",
    ),
    pytest.param(
        params(system=[{"type": "text", "text": ""}]),
        "system.0.text: text content blocks must be non-empty",
        id="empty-system-block",
    ),
    pytest.param(
        params(temperature=1.5), "temperature: Expected `float` <= 1.0", id="temperature-high"
    ),
    pytest.param(
        params(temperature=-0.1), "temperature: Expected `float` >= 0.0", id="temperature-negative"
    ),
    pytest.param(params(top_k=-1), "top_k: Expected `int` >= 0", id="top_k-negative"),
    pytest.param(
        params(metadata={"user_id": "u" * 513}),
        "metadata.user_id: Expected `str` of length <= 512",
        id="user_id-too-long",
    ),
    pytest.param(
        params(service_tier="priority"),
        "service_tier: Invalid enum value 'priority'",
        id="service_tier",
    ),
    pytest.param(
        params(
            tools=[{"name": "ok", "input_schema": {}}, {"name": "bad name", "input_schema": {}}]
        ),
        "tools.1.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
        id="tool-name-space",
    ),
    pytest.param(
        params(tools=[{"name": "x" * 129, "input_schema": {}}]),
        "tools.0.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
        id="tool-name-long",
    ),
    pytest.param(
        params(tools=[{"input_schema": {}}]),
        "tools.0.name: Field required",
        id="tool-name-missing",
    ),
    pytest.param(
        params(thinking={"type": "enabled", "budget_tokens": 1023}, max_tokens=4096),
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        id="thinking-budget-low",
    ),
    pytest.param(
        params(thinking={"type": "enabled", "budget_tokens": 2048}, max_tokens=2048),
        "`max_tokens` must be greater than `thinking.budget_tokens`.",
        id="thinking-budget-not-below-max",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), REJECTED)
def test_rejected_params_have_anthropic_style_messages(raw: bytes, expected: str) -> None:
    assert message_of(raw) == expected


@pytest.mark.parametrize(
    ("field", "value", "prefix"),
    [
        ("stream", True, "stream: "),
        ("speed", "fast", "speed: "),
        ("speed", "standard", "speed: "),
        ("max_tokens", 0, "max_tokens: "),
        ("max_tokens", -3, "max_tokens: "),
    ],
)
def test_not_allowed_in_a_batch(field: str, value: Any, prefix: str) -> None:
    """Spec 5.2: ``stream: true``, ``speed`` and ``max_tokens < 1`` fail inside a batch."""
    assert message_of(params(**{field: value})).startswith(prefix)


def test_negative_max_tokens_rejected_outside_batches_too() -> None:
    assert message_of(params(max_tokens=-1), in_batch=False) == (
        "max_tokens: Input should be greater than or equal to 0"
    )


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"model": "sim",}'])
def test_malformed_json_params(raw: bytes) -> None:
    assert message_of(raw).startswith("Invalid JSON")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"null", b"3"])
def test_params_that_are_valid_json_but_not_an_object(raw: bytes) -> None:
    message = message_of(raw)
    assert "Invalid JSON" not in message, message
    assert "object" in message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"\xff"}]}', "UTF-8"),
        (
            b'{"model":"m","max_tokens":1,"messages":[],"tools":[{"input_schema":{"a":'
            + b"[" * 5000,
            "too deeply",
        ),
    ],
)
def test_unreadable_bytes_are_params_errors_not_crashes(raw: bytes, message: str) -> None:
    """A stored request the worker cannot read must become its own errored result."""
    with pytest.raises(ParamsError, match=message):
        decode_params(raw, in_batch=True)
