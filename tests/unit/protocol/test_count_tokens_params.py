"""``decode_count_tokens_params``: a create body without its generation settings.

The fields are those of the SDK's ``MessageCountTokensParams``: the prompt checks are
the create ones (docs/protocol.md §7); everything that only steers generation is refused as
``Extra inputs are not permitted``, as the real count_tokens refuses it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchyard.errors import ParamsError
from batchyard.protocol.messages import (
    MessageCountTokensParams,
    MessageCreateParams,
    decode_count_tokens_params,
    decode_params,
)

USER = [{"role": "user", "content": "hello"}]


def body(**fields: Any) -> bytes:
    """A valid count_tokens body with ``fields`` changed; a value of ``...`` removes the key."""
    value: dict[str, Any] = {"model": "sim", "messages": USER}
    value.update(fields)
    return json.dumps({k: v for k, v in value.items() if v is not ...}).encode()


def message_of(raw: bytes) -> str:
    with pytest.raises(ParamsError) as caught:
        decode_count_tokens_params(raw)
    assert caught.value.error_type == "invalid_request_error"
    return caught.value.message


def test_every_field_the_sdk_sends_is_accepted() -> None:
    params = decode_count_tokens_params(
        body(
            system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": [{"type": "text", "text": "again"}]},
            ],
            tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
            tool_choice={"type": "auto"},
            thinking={"type": "enabled", "budget_tokens": 2048},
            cache_control={"type": "ephemeral"},
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
            speed="standard",
        )
    )
    assert type(params) is MessageCountTokensParams
    assert len(params.messages) == 3 and params.thinking == {
        "type": "enabled",
        "budget_tokens": 2048,
    }


def test_beta_keys_are_taken_under_a_beta_header() -> None:
    """``context_management`` and ``mcp_servers`` exist only in the SDK's beta types."""
    raw = body(context_management={"edits": []}, mcp_servers=[])
    params = decode_count_tokens_params(raw, beta=True)
    assert params.context_management == {"edits": []} and params.mcp_servers == []
    assert message_of(raw) == "context_management: Extra inputs are not permitted"


def test_a_create_body_carries_the_same_prompt_fields() -> None:
    """Create params are count_tokens params plus generation settings, so one prompt renderer
    (an engine's tokenizer) serves both."""
    create = decode_params(body(max_tokens=16, system="Be brief."), in_batch=False)
    assert isinstance(create, MessageCountTokensParams) and isinstance(create, MessageCreateParams)
    count = decode_count_tokens_params(body(system="Be brief."))
    assert (create.model, create.system, create.messages) == (
        count.model,
        count.system,
        count.messages,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", 16),
        ("stream", False),
        ("temperature", 0.5),
        ("top_p", 0.9),
        ("top_k", 5),
        ("stop_sequences", ["x"]),
        ("metadata", {"user_id": "u"}),
        ("service_tier", "auto"),
        ("container", None),
        ("inference_geo", "us"),
    ],
)
def test_generation_settings_are_refused(field: str, value: Any) -> None:
    assert message_of(body(**{field: value})) == f"{field}: Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(body(messages=...), "messages: Field required", id="no-messages"),
        pytest.param(body(model=...), "model: Field required", id="no-model"),
        pytest.param(
            body(messages=[]), "messages: List should have at least 1 item", id="empty-messages"
        ),
        pytest.param(
            body(messages=[{"role": "user", "content": "  "}]),
            "messages.0: all messages must have non-empty content except for the optional "
            "final assistant message",
            id="blank-turn",
        ),
        pytest.param(
            body(tools=[{"name": "no spaces", "input_schema": {}}]),
            "tools.0.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
            id="bad-tool-name",
        ),
        pytest.param(
            body(thinking={"type": "enabled", "budget_tokens": 100}),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            id="small-thinking-budget",
        ),
    ],
)
def test_prompt_problems_name_the_field(raw: bytes, expected: str) -> None:
    assert message_of(raw) == expected


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"messages": [{"role": "robot", "content": "hi"}]}, id="bad-role"),
        pytest.param({"messages": [{"role": "user", "content": 3}]}, id="bad-content"),
        pytest.param(
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            id="empty-text-block",
        ),
        pytest.param({"system": [{"type": "text", "text": ""}]}, id="empty-system-block"),
        pytest.param({"context_management": {"edits": []}}, id="beta-key-without-beta"),
    ],
)
def test_prompt_problems_read_exactly_as_on_create(fields: dict[str, Any]) -> None:
    with pytest.raises(ParamsError) as create:
        decode_params(body(max_tokens=16, **fields), in_batch=False)
    assert message_of(body(**fields)) == create.value.message


def test_a_thinking_budget_needs_no_max_tokens() -> None:
    """Create also wants ``max_tokens`` above the budget; count_tokens has no ``max_tokens``."""
    params = decode_count_tokens_params(body(thinking={"type": "enabled", "budget_tokens": 50000}))
    assert params.thinking is not None
