"""OpenAI's Chat Completions API as data: the request the ``openai`` engine sends to
``POST {base_url}/chat/completions``, the answer, the stream's chunks and error bodies.

Requests are built, never decoded from a client, so their structs encode only what is set
(``omit_defaults``): a strict server (``transformers serve`` answers 422 to a key outside
the OpenAI schema) sees nothing it was not asked for. Answers are decoded leniently: every
server adds fields of its own (vLLM ``stop_reason``, SGLang ``matched_stop``,
``reasoning_content``) and leaves others out, so only what the engine reads is declared and
most of it is optional.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

# --------------------------------------------------------------------------- request


class TextPart(Struct, tag_field="type", tag="text"):
    text: str


class ImageUrl(Struct):
    #: An ``https://`` URL or a ``data:<media type>;base64,<data>`` URL.
    url: str


class ImagePart(Struct, tag_field="type", tag="image_url"):
    image_url: ImageUrl


ContentPart = TextPart | ImagePart


class FunctionCall(Struct):
    name: str
    #: The call's arguments as a JSON text (OpenAI's wire form, not an object).
    arguments: str


class ToolCall(Struct, tag_field="type", tag="function"):
    id: str
    function: FunctionCall


class SystemMessage(Struct, tag_field="role", tag="system"):
    content: str


class UserMessage(Struct, tag_field="role", tag="user"):
    content: str | list[ContentPart]


class AssistantMessage(Struct, tag_field="role", tag="assistant", omit_defaults=True):
    content: str | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(Struct, tag_field="role", tag="tool"):
    tool_call_id: str
    content: str


ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolMessage


class FunctionDefinition(Struct, omit_defaults=True):
    name: str
    parameters: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


class FunctionTool(Struct, tag_field="type", tag="function"):
    function: FunctionDefinition


class FunctionName(Struct):
    name: str


class NamedToolChoice(Struct, tag_field="type", tag="function"):
    """Call exactly this function (Anthropic's ``tool_choice: {type: "tool"}``)."""

    function: FunctionName


ToolChoice = Literal["auto", "required", "none"] | NamedToolChoice


class StreamOptions(Struct):
    include_usage: bool


class ChatRequest(Struct, omit_defaults=True):
    """A ``POST /v1/chat/completions`` body. ``top_k`` is not OpenAI's: vLLM, SGLang and
    llama.cpp take it as an extra sampling parameter (the engine sends it only when told
    the server does)."""

    model: str
    messages: list[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None


class TokenizeRequest(Struct, omit_defaults=True):
    """vLLM's ``POST /tokenize`` body for a chat: the prompt as the chat template renders it,
    up to where the answer starts (what ``usage.prompt_tokens`` counts)."""

    model: str
    messages: list[ChatMessage]
    tools: list[FunctionTool] | None = None


class TokenizeAnswer(Struct):
    count: int


# --------------------------------------------------------------------------- answer


class AnswerFunction(Struct):
    name: str = ""
    arguments: str = ""


class AnswerToolCall(Struct):
    id: str = ""
    function: AnswerFunction | None = None


class AnswerMessage(Struct):
    content: str | None = None
    tool_calls: list[AnswerToolCall] | None = None


class Choice(Struct):
    message: AnswerMessage
    finish_reason: str | None = None
    #: vLLM: the stop string (or token id) that ended the answer, ``null`` for end of turn.
    stop_reason: str | int | None = None
    #: SGLang: the same as vLLM's ``stop_reason``.
    matched_stop: str | int | None = None


class CompletionUsage(Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ChatCompletion(Struct):
    """A non-streamed answer (``choices`` holds one choice: the engine never asks for ``n``)."""

    choices: list[Choice]
    usage: CompletionUsage | None = None


# --------------------------------------------------------------------------- stream


class DeltaFunction(Struct):
    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(Struct):
    """A piece of a streamed tool call: ``id`` and ``name`` come once, ``arguments`` in
    pieces, all under the call's ``index``."""

    index: int = 0
    id: str | None = None
    function: DeltaFunction | None = None


class Delta(Struct):
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChunkChoice(Struct):
    delta: Delta | None = None
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    matched_stop: str | int | None = None


class ErrorDetail(Struct):
    message: str = ""


class ChatCompletionChunk(Struct):
    """One ``data:`` event of a streamed answer. With ``include_usage`` the usage comes in a
    last chunk whose ``choices`` is empty (OpenAI, vLLM) or beside the finish reason
    (``transformers serve``). A server that fails mid-stream sends an ``error`` instead
    (a string from ``transformers serve``, an object from vLLM)."""

    choices: list[ChunkChoice] = []
    usage: CompletionUsage | None = None
    error: str | ErrorDetail | None = None


class ErrorBody(Struct):
    """An error answer, in the shapes OpenAI-compatible servers use: OpenAI, vLLM and
    llama.cpp ``{"error": {"message": …}}``, older vLLM ``{"object": "error", "message": …}``,
    FastAPI servers (``transformers serve``) ``{"detail": …}``."""

    error: str | ErrorDetail | None = None
    message: str | None = None
    detail: Any = None
