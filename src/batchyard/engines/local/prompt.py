"""Messages params → the model's chat-template token ids, and the shape of the answer.

A chat model's template takes a system prompt and alternating user/assistant turns. Tools,
tool calls and their results, and an output format are rendered into that text (a small
model has no tool-calling template of its own): the system prompt lists the tools and how to
call them (``<tool_call>{"name": ..., "input": ...}</tool_call>``) or the schema the answer
must follow, and a ``tool_use`` / ``tool_result`` block in the history becomes that same tag /
a ``<tool_result>`` tag. The grammar (:mod:`.grammar`) then makes the answer keep the form.
Anything else a model here cannot read (images, documents, thinking) is refused with an
``invalid_request_error`` naming the block, rather than silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from batchyard.engines.capabilities import Capabilities, refuse_unsupported
from batchyard.engines.local.grammar import TOOL_CALL_CLOSE, TOOL_CALL_OPEN
from batchyard.errors import ParamsError
from batchyard.protocol.messages import (
    ContentBlockParam,
    MessageCountTokensParams,
    MessageParam,
    system_text,
)
from batchyard.protocol.structured import AnswerShape, answer_shape

#: Text in, text out, with tools and output formats enforced by grammar.
LOCAL_CAPABILITIES = Capabilities(tools=True, structured_outputs=True)

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    shape: AnswerShape
    #: The prompt ends with the tool-call tag: the answer is the call (``any`` / ``tool``).
    forced_call: bool


def chat_turns(params: MessageCountTokensParams) -> tuple[Chat, str, AnswerShape]:
    """The chat to render, the text of a final assistant turn to continue (or ``""``), and
    the answer's shape.

    Consecutive turns of the same role are joined with a blank line, as Anthropic does. A final
    assistant turn is a prefill: the answer continues it, so it is appended after the
    generation prompt instead of being closed as a finished turn.
    """
    refuse_unsupported(params, LOCAL_CAPABILITIES, params.model)
    shape = answer_shape(params)
    chat: Chat = []
    system = "\n\n".join(
        part for part in (system_text(params), instructions(shape)) if part is not None
    )
    if system:
        chat.append({"role": "system", "content": system})
    for index, message in enumerate(params.messages):
        text = _turn_text(message, index, params.model)
        if chat and chat[-1]["role"] == message.role:
            chat[-1]["content"] += "\n\n" + text
        else:
            chat.append({"role": message.role, "content": text})
    prefill = ""
    if chat[-1]["role"] == "assistant":
        prefill = chat.pop()["content"]
        if shape.json_schema is not None or shape.must_call:
            # The grammar starts the answer afresh; a prefill would be dropped, or make the
            # client's prefill + answer invalid JSON.
            asked = "a forced tool call" if shape.must_call else shape.format_field
            raise ParamsError(
                f"messages.{len(params.messages) - 1}: a final assistant turn (prefill) cannot "
                f"be combined with {asked} on {params.model}"
            )
    if not any(turn["role"] == "user" for turn in chat):
        raise ParamsError("messages: the conversation must contain at least one user message")
    return chat, prefill, shape


def prompt_ids(tokenizer: Any, params: MessageCountTokensParams) -> Prompt:
    """Token ids of the rendered prompt, ending where the assistant's answer starts (after
    the tool-call tag when a call is forced)."""
    chat, prefill, shape = chat_turns(params)
    text: str = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    if shape.must_call:
        prefill += TOOL_CALL_OPEN
    ids: list[int] = tokenizer(text + prefill, add_special_tokens=False)["input_ids"]
    return Prompt(ids, shape, forced_call=shape.must_call)


def instructions(shape: AnswerShape) -> str | None:
    """What the system prompt says of the tools and the format (``None``: nothing)."""
    parts = []
    if tools := shape.callable_tools:
        listed = "\n".join(
            f"- {tool.name}: {tool.description or '(no description)'} Input schema: "
            f"{json.dumps(tool.input_schema)}"
            for tool in tools
        )
        parts.append(
            "You can call these tools. To call one, answer with "
            f'{TOOL_CALL_OPEN}{{"name": <tool name>, "input": <its input>}}{TOOL_CALL_CLOSE}.'
            f"\nTools:\n{listed}"
        )
    if shape.json_schema is not None:
        parts.append(
            "Answer with only a JSON document valid against this JSON Schema: "
            + json.dumps(shape.json_schema)
        )
    return "\n\n".join(parts) or None


def _turn_text(message: MessageParam, index: int, model: str) -> str:
    """The text of turn ``index``: text blocks, and tool calls / results in the tags the
    system prompt describes; :class:`ParamsError` names any other block."""
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    return "".join(
        _block_text(block, f"messages.{index}.content.{position}", model)
        for position, block in enumerate(message.content)
    )


def _block_text(block: ContentBlockParam, where: str, model: str) -> str:
    if block.type == "text":
        return block.text
    if block.type == "tool_use":
        call = json.dumps({"name": block.name, "input": block.input or {}})
        return f"{TOOL_CALL_OPEN}{call}{TOOL_CALL_CLOSE}"
    if block.type == "tool_result":
        result = _result_text(block.content, where, model)
        tag = "<tool_result error>" if block.is_error else "<tool_result>"
        return f"{tag}{result}</tool_result>"
    raise ParamsError(
        f"{where}: content blocks of type '{block.type}' are not supported by {model} "
        "(it reads text, tool calls and tool results)"
    )


def _result_text(content: object, where: str, model: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "".join(
            _block_text(block, f"{where}.content.{position}", model)
            for position, block in enumerate(content)
        )
    raise ParamsError(f"{where}.content: a string or a list of text blocks")
