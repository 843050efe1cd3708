"""An engine refuses, naming the field, every request feature it would not honour."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from batchyard.engines.capabilities import TEXT_ONLY, Capabilities, refuse_unsupported
from batchyard.errors import ParamsError
from batchyard.protocol.messages import MessageCreateParams


def params(**fields: Any) -> MessageCreateParams:
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    return msgspec.convert({**body, **fields}, MessageCreateParams)


REFUSED = {
    "tools": ({"tools": [{"name": "t", "input_schema": {"type": "object"}}]}, "tools: "),
    "tool_choice any": ({"tool_choice": {"type": "any"}}, "tool_choice: "),
    "tool_choice tool": ({"tool_choice": {"type": "tool", "name": "t"}}, "tool_choice: "),
    "thinking enabled": ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking: "),
    "thinking adaptive": ({"thinking": {"type": "adaptive"}}, "thinking: 'adaptive'"),
    "output format": (
        {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
        "output_config.format: ",
    ),
    "effort": ({"output_config": {"effort": "low"}}, "output_config.effort: "),
    "context management": ({"context_management": {"edits": []}}, "context_management: "),
    "mcp servers": ({"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]}, "mcp_"),
    "fast mode": ({"speed": "fast"}, "speed: 'fast'"),
    "container": ({"container": "container_1"}, "container: "),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_text_only_engine_refuses_by_name(case: str) -> None:
    fields, message = REFUSED[case]
    with pytest.raises(ParamsError) as caught:
        refuse_unsupported(params(**fields), TEXT_ONLY, "m")
    assert caught.value.message.startswith(message)
    assert caught.value.message.endswith("not supported by m")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"thinking": {"type": "disabled"}},
        {"cache_control": {"type": "ephemeral"}},
        {"speed": "standard"},
        {"output_config": {"format": None, "effort": None}},
        {"tool_choice": {"type": "none"}},
        {"tool_choice": {"type": "auto"}},
        {"service_tier": "auto", "metadata": {"user_id": "u"}},
    ],
)
def test_what_changes_nothing_about_the_answer_is_taken(fields: dict[str, Any]) -> None:
    refuse_unsupported(params(**fields), TEXT_ONLY, "m")


def test_an_engine_that_honours_a_feature_takes_it() -> None:
    able = Capabilities(tools=True, thinking=True, structured_outputs=True)
    refuse_unsupported(
        params(
            tools=[{"name": "t", "input_schema": {"type": "object"}}],
            tool_choice={"type": "auto"},
            thinking={"type": "enabled", "budget_tokens": 1024},
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
            max_tokens=2048,
        ),
        able,
        "m",
    )


def test_the_wire_capabilities_say_the_same() -> None:
    wire = msgspec.to_builtins(TEXT_ONLY.wire())
    assert wire["batch"] == {"supported": True}
    assert wire["structured_outputs"] == {"supported": False}
    assert wire["thinking"]["types"]["disabled"] == {"supported": True}
    assert wire["thinking"]["types"]["adaptive"] == {"supported": False}
    assert msgspec.to_builtins(Capabilities(structured_outputs=True).wire())[
        "structured_outputs"
    ] == {"supported": True}
