"""OpenAI's Chat Completions API as clients speak it to us: the ``POST /v1/chat/completions``
request, decoded strictly, and the answers we send (``chat.completion`` and
``chat.completion.chunk``), shaped exactly as the official SDK's types.

The request structs hold every key of the SDK's ``CompletionCreateParams`` (a test holds them
in step) and refuse any other, as OpenAI does, so a misspelt option is an error rather than
an option silently ignored. Keys we cannot honour are still declared: the translation
(:mod:`batchyard.protocol.chat_translation`) refuses them by name when they are set. The
answer structs put every key OpenAI sends where the SDK requires it (``object``, ``created``,
``index``, ``logprobs: null``, ``refusal: null``); a key OpenAI leaves out when it has nothing
to say (``tool_calls``, a chunk's ``usage`` without ``include_usage``) is ``UNSET``, which
msgspec never encodes.

(The ``openai`` engine's own, lenient, structs for talking to an upstream are in
:mod:`batchyard.protocol.openai_chat`.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

# --------------------------------------------------------------------------- request


class _Strict(Struct, forbid_unknown_fields=True, kw_only=True):
    """Unknown keys are refused; a key may be left out (or ``null``) unless required."""


class TextPart(_Strict, tag_field="type", tag="text"):
    text: str
    #: A cache hint: accepted and dropped, as a hint that changes nothing in the answer.
    prompt_cache_breakpoint: Any = None


class ImageUrl(_Strict):
    url: str
    detail: Literal["auto", "low", "high", "original"] | None = None


class ImagePart(_Strict, tag_field="type", tag="image_url"):
    image_url: ImageUrl
    prompt_cache_breakpoint: Any = None


class AudioPart(_Strict, tag_field="type", tag="input_audio"):
    """Declared so that it is refused by name (no engine here hears audio)."""

    input_audio: Any
    prompt_cache_breakpoint: Any = None


class FilePart(_Strict, tag_field="type", tag="file"):
    """Declared so that it is refused by name."""

    file: Any
    prompt_cache_breakpoint: Any = None


class RefusalPart(_Strict, tag_field="type", tag="refusal"):
    refusal: str


UserPart = TextPart | ImagePart | AudioPart | FilePart


class SystemMessage(_Strict, tag_field="role", tag="system"):
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Strict, tag_field="role", tag="developer"):
    """OpenAI's newer name for a system message; read the same way."""

    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Strict, tag_field="role", tag="user"):
    content: str | list[UserPart]
    name: str | None = None


class FunctionCall(_Strict):
    name: str
    #: The call's arguments as a JSON text.
    arguments: str


class FunctionToolCall(_Strict, tag_field="type", tag="function"):
    id: str
    function: FunctionCall


class CustomToolCall(_Strict, tag_field="type", tag="custom"):
    id: str
    custom: Any


class AssistantMessage(_Strict, tag_field="role", tag="assistant"):
    content: str | list[TextPart | RefusalPart] | None = None
    tool_calls: list[FunctionToolCall | CustomToolCall] | None = None
    refusal: str | None = None
    name: str | None = None
    audio: Any = None
    function_call: Any = None
    #: Not in the SDK's request type, but in its answer's message, which clients append to
    #: the history as it is (the SDK sends it on); OpenAI takes it. Citations of the text:
    #: dropped, they change nothing in what the model reads.
    annotations: list[Any] | None = None


class ToolMessage(_Strict, tag_field="role", tag="tool"):
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(_Strict, tag_field="role", tag="function"):
    """The deprecated form of a tool message; refused, naming ``tool`` messages instead."""

    content: str | None
    name: str


ChatMessage = (
    SystemMessage
    | DeveloperMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | FunctionMessage
)


class FunctionDefinition(_Strict):
    name: str
    description: str | None = None
    #: A JSON Schema of the arguments; left out: a function that takes none.
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(_Strict, tag_field="type", tag="function"):
    function: FunctionDefinition


class CustomTool(_Strict, tag_field="type", tag="custom"):
    custom: Any


class NamedFunction(_Strict):
    name: str


class FunctionChoice(_Strict, tag_field="type", tag="function"):
    function: NamedFunction


class CustomChoice(_Strict, tag_field="type", tag="custom"):
    custom: Any


class AllowedToolsChoice(_Strict, tag_field="type", tag="allowed_tools"):
    allowed_tools: Any


ToolChoice = (
    Literal["none", "auto", "required"] | FunctionChoice | CustomChoice | AllowedToolsChoice
)


class TextFormat(_Strict, tag_field="type", tag="text"):
    pass


class JsonSchema(_Strict):
    name: str
    description: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class JsonSchemaFormat(_Strict, tag_field="type", tag="json_schema"):
    json_schema: JsonSchema


class JsonObjectFormat(_Strict, tag_field="type", tag="json_object"):
    pass


ResponseFormat = TextFormat | JsonSchemaFormat | JsonObjectFormat


class StreamOptions(_Strict):
    include_usage: bool | None = None
    #: We add no obfuscation padding whatever it says (the SDK documents it as optional).
    include_obfuscation: bool | None = None


class ChatCompletionRequest(_Strict):
    """A ``POST /v1/chat/completions`` body (or an OpenAI batch line's ``body``)."""

    model: str
    messages: list[ChatMessage]
    audio: Any = None
    frequency_penalty: float | None = None
    function_call: Any = None
    functions: Any = None
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    max_completion_tokens: int | None = None
    max_tokens: int | None = None
    metadata: dict[str, str] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    moderation: Any = None
    n: int | None = None
    parallel_tool_calls: bool | None = None
    prediction: Any = None
    presence_penalty: float | None = None
    prompt_cache_key: str | None = None
    prompt_cache_options: Any = None
    prompt_cache_retention: str | None = None
    reasoning_effort: str | None = None
    response_format: ResponseFormat | None = None
    safety_identifier: str | None = None
    seed: int | None = None
    service_tier: str | None = None
    stop: str | list[str] | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | None = None
    tool_choice: ToolChoice | None = None
    tools: list[FunctionTool | CustomTool] | None = None
    top_logprobs: int | None = None
    top_p: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    user: str | None = None
    verbosity: str | None = None
    web_search_options: Any = None


# --------------------------------------------------------------------------- answer
# Keyword-only structs: the keys go out in OpenAI's order, defaults among them.

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class PromptTokensDetails(Struct, kw_only=True):
    #: Prompt tokens read from the cache (Anthropic's ``cache_read_input_tokens``).
    cached_tokens: int
    #: Prompt tokens written to the cache (``cache_creation_input_tokens``), when any.
    cache_write_tokens: int | UnsetType = UNSET


class CompletionUsage(Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class ResponseFunction(Struct, kw_only=True):
    name: str
    arguments: str


class ResponseToolCall(Struct, kw_only=True):
    id: str
    type: Literal["function"] = "function"
    function: ResponseFunction


class ResponseMessage(Struct, kw_only=True):
    role: Literal["assistant"] = "assistant"
    #: ``null`` when the answer is tool calls only.
    content: str | None
    refusal: None = None
    tool_calls: list[ResponseToolCall] | UnsetType = UNSET
    annotations: list[Any] = []


class Choice(Struct, kw_only=True):
    index: int = 0
    message: ResponseMessage
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletion(Struct, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: None = None


class DeltaFunction(Struct, kw_only=True):
    name: str | UnsetType = UNSET
    arguments: str = ""


class DeltaToolCall(Struct, kw_only=True):
    """A piece of a streamed tool call: ``id``, ``type`` and the name come in its first
    piece, the arguments' JSON text in the pieces after."""

    index: int
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: DeltaFunction


class Delta(Struct, kw_only=True):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType = UNSET
    tool_calls: list[DeltaToolCall] | UnsetType = UNSET


class ChunkChoice(Struct, kw_only=True):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(Struct, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: None = None
    #: Empty in the last chunk of a stream with ``include_usage``.
    choices: list[ChunkChoice]
    #: With ``include_usage``: ``null`` in every chunk but the last; else never sent.
    usage: CompletionUsage | UnsetType | None = UNSET
