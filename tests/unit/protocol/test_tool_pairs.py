"""Tool calls and their results pair up in the history, as the API requires."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from batchyard.errors import ParamsError
from batchyard.protocol.messages import MessageCountTokensParams
from batchyard.protocol.structured import answer_shape

CALL = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
}


def result(tool_use_id: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use_id}]}


def shape_of(*messages: dict[str, Any]) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    body = {"model": "m", "tools": tools, "messages": list(messages)}
    answer_shape(msgspec.convert(body, MessageCountTokensParams))


def test_a_call_answered_by_its_result_is_fine() -> None:
    shape_of({"role": "user", "content": "hi"}, CALL, result("t1"))
    shape_of({"role": "user", "content": "hi"}, CALL)  # the call is the last turn


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([result("t1")], "messages.0.content.0: unexpected tool_use_id 't1'"),
        (
            [
                {"role": "user", "content": "hi"},
                CALL,
                {"role": "user", "content": result("t1")["content"] + result("t2")["content"]},
            ],
            "messages.2.content.1: unexpected tool_use_id 't2'",
        ),
        (
            [{"role": "user", "content": "hi"}, CALL, {"role": "user", "content": "and?"}],
            "messages.1: tool_use ids were found without tool_result blocks immediately after: t1",
        ),
    ],
)
def test_unpaired_calls_and_results_are_refused(messages: list[dict[str, Any]], error: str) -> None:
    with pytest.raises(ParamsError) as caught:
        shape_of(*messages)
    assert caught.value.message.startswith(error)
