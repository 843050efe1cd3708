"""What shape a request asks its answer to take: free text, JSON against a schema, or a tool
call, read once from ``tools``, ``tool_choice`` and ``output_config.format`` (or the beta
``output_format``) for the engines that produce answers here.

The rules follow the API: ``tool_choice`` ``auto`` (the default with tools) lets the model
answer in text or call a tool, ``any`` makes it call one of the tools, ``tool`` the one
named, ``none`` none; ``output_config.format`` ``json_schema`` makes the text answer a JSON
document valid against ``schema``. Client tools are the ones a model here can call (no
``type``, or ``custom``); Anthropic's server tools (web search, code execution, ...) run on
Anthropic's side and are refused by name. Problems are :class:`ParamsError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from batchyard.errors import ParamsError
from batchyard.protocol.messages import ContentBlockParam, MessageCountTokensParams, MessageParam

Choice = Literal["auto", "any", "tool", "none"]


@dataclass(frozen=True)
class ToolSpec:
    #: Where the tool stands in ``tools`` (for error paths: ``tools.<index>...``).
    index: int
    name: str
    description: str
    #: A JSON Schema for the call's ``input`` (an object).
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class AnswerShape:
    """The shape of the answer a request asks for."""

    #: ``output_config.format.schema``: the text answer is a JSON document valid against it.
    json_schema: dict[str, Any] | None = None
    #: The field the schema came from: ``output_config.format`` or the beta ``output_format``.
    format_field: str = "output_config.format"
    #: The client tools the request declares, in order.
    tools: tuple[ToolSpec, ...] = ()
    choice: Choice = "auto"

    @property
    def callable_tools(self) -> tuple[ToolSpec, ...]:
        """The tools the answer may call: the named one for ``tool``, none for ``none``."""
        if self.choice == "none":
            return ()
        return self.tools

    @property
    def must_call(self) -> bool:
        """The answer is a tool call (``any`` / ``tool``), not text."""
        return self.choice in ("any", "tool") and bool(self.tools)

    @property
    def free(self) -> bool:
        """Nothing constrains the answer: plain text."""
        return self.json_schema is None and not self.callable_tools


FREE_TEXT = AnswerShape()


def answer_shape(params: MessageCountTokensParams) -> AnswerShape:
    """Read the request's tools, tool choice and output format (and check that the history's
    tool calls and results pair up, as the API does)."""
    _check_tool_pairs(params)
    tools = tuple(_tool(index, tool, params.model) for index, tool in enumerate(params.tools or ()))
    names = [tool.name for tool in tools]
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise ParamsError(f"tools: tool names must be unique ({duplicate!r} appears twice)")
    choice_param = params.tool_choice or {}
    choice = choice_param.get("type", "auto")
    if choice not in ("auto", "any", "tool", "none"):
        raise ParamsError(f"tool_choice.type: {choice!r} is not one of auto, any, tool, none")
    if choice in ("any", "tool") and not tools:
        raise ParamsError(f"tool_choice: {choice!r} needs at least one tool in tools")
    if choice == "tool":
        name = choice_param.get("name")
        chosen = [tool for tool in tools if tool.name == name]
        if not chosen:
            raise ParamsError(f"tool_choice.name: {name!r} is not the name of a tool in tools")
        tools = tuple(chosen)
    format_field, schema = _format_schema(params)
    return AnswerShape(json_schema=schema, format_field=format_field, tools=tools, choice=choice)


def _tool(index: int, tool: dict[str, Any], model: str) -> ToolSpec:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise ParamsError(
            f"tools.{index}.type: server tool {kind!r} is not supported by {model}; only "
            "client tools (with an input_schema) can be called here"
        )
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise ParamsError(f"tools.{index}.input_schema: required, a JSON Schema object")
    return ToolSpec(
        index=index,
        name=str(tool.get("name", "")),
        description=str(tool.get("description") or ""),
        input_schema=schema,
    )


def _format_schema(params: MessageCountTokensParams) -> tuple[str, dict[str, Any] | None]:
    """``output_config.format`` (or the beta top-level ``output_format``): the field it came
    from and its schema."""
    located = [
        (field, value)
        for field, value in (
            ("output_config.format", (params.output_config or {}).get("format")),
            ("output_format", params.output_format),
        )
        if value is not None
    ]
    if not located:
        return "output_config.format", None
    field, value = located[0]
    if not isinstance(value, dict) or value.get("type") != "json_schema":
        kind = value.get("type") if isinstance(value, dict) else value
        raise ParamsError(f"{field}.type: {kind!r} is not supported; use 'json_schema'")
    schema = value.get("schema")
    if not isinstance(schema, dict):
        raise ParamsError(f"{field}.schema: required, a JSON Schema object")
    return field, schema


def _check_tool_pairs(params: MessageCountTokensParams) -> None:
    """Each ``tool_use`` of an assistant turn is answered by a ``tool_result`` in the user
    turn right after it (when there is one), and each ``tool_result`` answers a call of the
    assistant turn right before it, as the API requires."""
    messages = params.messages
    for index, message in enumerate(messages):
        if message.role == "user":
            called = _block_ids(messages[index - 1], "tool_use", "id") if index else set()
            for position, block in _blocks(message, "tool_result"):
                if block.tool_use_id not in called:
                    raise ParamsError(
                        f"messages.{index}.content.{position}: unexpected tool_use_id "
                        f"{block.tool_use_id!r} in a tool_result block: each tool_result must "
                        "answer a tool_use block of the previous message"
                    )
        elif message.role == "assistant" and index + 1 < len(messages):
            answered = _block_ids(messages[index + 1], "tool_result", "tool_use_id")
            missing = sorted(_block_ids(message, "tool_use", "id") - answered)
            if missing:
                raise ParamsError(
                    f"messages.{index}: tool_use ids were found without tool_result blocks "
                    f"immediately after: {', '.join(missing)}"
                )


def _blocks(message: MessageParam, kind: str) -> list[tuple[int, ContentBlockParam]]:
    if not isinstance(message.content, list):
        return []
    return [
        (position, block) for position, block in enumerate(message.content) if block.type == kind
    ]


def _block_ids(message: MessageParam, kind: str, field: str) -> set[str]:
    return {getattr(block, field) for _, block in _blocks(message, kind)}
