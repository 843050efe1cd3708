"""The Messages API as data: request params, the response ``Message``, and params validation.

Batch requests keep their ``params`` as raw bytes until a worker picks them up; only then are
they decoded here. Validation problems surface as :class:`ParamsError` carrying Anthropic's
``<dotted.path>: <reason>`` message, which the batch path turns into an ``errored`` result
and the sync path into a 400.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from batchyard.errors import ParamsError

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


# --------------------------------------------------------------------------- input blocks


class TextBlockParam(Struct, tag_field="type", tag="text", omit_defaults=True):
    text: str
    cache_control: dict[str, Any] | None = None
    citations: Any = None


class ImageBlockParam(Struct, tag_field="type", tag="image", omit_defaults=True):
    source: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class DocumentBlockParam(Struct, tag_field="type", tag="document", omit_defaults=True):
    source: dict[str, Any]
    title: str | None = None
    context: str | None = None
    citations: Any = None
    cache_control: dict[str, Any] | None = None


class ToolUseBlockParam(Struct, tag_field="type", tag="tool_use", omit_defaults=True):
    id: str
    name: str
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None
    caller: Any = None


class ToolResultBlockParam(Struct, tag_field="type", tag="tool_result", omit_defaults=True):
    tool_use_id: str
    content: str | list[dict[str, Any]] | None = None
    is_error: bool | None = None
    cache_control: dict[str, Any] | None = None


class ThinkingBlockParam(Struct, tag_field="type", tag="thinking", omit_defaults=True):
    thinking: str
    signature: str


class RedactedThinkingBlockParam(
    Struct, tag_field="type", tag="redacted_thinking", omit_defaults=True
):
    data: str


class SearchResultBlockParam(Struct, tag_field="type", tag="search_result", omit_defaults=True):
    source: str
    title: str
    content: list[dict[str, Any]]
    citations: Any = None
    cache_control: dict[str, Any] | None = None


ContentBlockParam = (
    TextBlockParam
    | ImageBlockParam
    | DocumentBlockParam
    | ToolUseBlockParam
    | ToolResultBlockParam
    | ThinkingBlockParam
    | RedactedThinkingBlockParam
    | SearchResultBlockParam
)


class MessageParam(Struct, omit_defaults=True):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlockParam]


class Metadata(Struct, omit_defaults=True):
    user_id: Annotated[str, Meta(max_length=512)] | None = None


class MessageCountTokensParams(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A ``POST /v1/messages/count_tokens`` body: the part of a Messages body the model reads.

    :class:`MessageCreateParams` extends it with the generation settings, so both bodies are
    declared and validated by one set of fields and checks, and whatever renders a prompt (an
    engine's tokenizer, :func:`system_text`) takes either. Decoded on its own it refuses
    ``max_tokens``, ``stream``, ``temperature`` … as ``Extra inputs are not permitted`` (the
    SDK's count_tokens type has none of them). ``context_management`` and ``mcp_servers`` are
    beta-only there, but accepted here as on create: no route reads ``?beta=true`` (§1.3).
    """

    model: str
    messages: list[MessageParam]
    system: str | list[TextBlockParam] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    speed: str | None = None
    user_profile_id: str | None = None
    context_management: Any = None
    mcp_servers: Any = None


class MessageCreateParams(MessageCountTokensParams, kw_only=True):
    """A ``POST /v1/messages`` body. Unknown keys are rejected, as the real API does.

    Encoding omits unset fields (``omit_defaults``), so a body forwarded upstream carries
    only what the client sent. ``kw_only`` lets the required ``max_tokens`` follow the
    inherited optional fields.
    """

    max_tokens: int
    temperature: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    metadata: Metadata | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    container: Any = None
    inference_geo: str | None = None
    diagnostics: Any = None


class MessageTokensCount(Struct):
    """The count_tokens answer."""

    input_tokens: int


# --------------------------------------------------------------------------- output


class TextBlock(Struct, tag_field="type", tag="text"):
    text: str
    citations: list[dict[str, Any]] | None = None


class ToolUseBlock(Struct, tag_field="type", tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]


class ThinkingBlock(Struct, tag_field="type", tag="thinking"):
    thinking: str
    signature: str


class RedactedThinkingBlock(Struct, tag_field="type", tag="redacted_thinking"):
    data: str


ContentBlock = TextBlock | ToolUseBlock | ThinkingBlock | RedactedThinkingBlock


class CacheCreation(Struct):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class Usage(Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: CacheCreation = msgspec.field(default_factory=CacheCreation)
    service_tier: Literal["standard", "priority", "batch"] = "standard"


class Message(Struct, tag_field="type", tag="message"):
    """The full non-streaming Messages response; also ``succeeded.message`` in batch results."""

    id: str
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason
    stop_sequence: str | None
    usage: Usage
    role: Literal["assistant"] = "assistant"


# --------------------------------------------------------------------------- validation

_params_decoder = msgspec.json.Decoder(MessageCreateParams)
_count_tokens_decoder = msgspec.json.Decoder(MessageCountTokensParams)
_Params = TypeVar("_Params", MessageCreateParams, MessageCountTokensParams)


def json_path(msgspec_path: str) -> str:
    """``$.messages[0].content`` → ``messages.0.content``: Anthropic's path style."""
    path = msgspec_path.removeprefix("$").removeprefix(".")
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def describe_validation_error(error: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """Rewrite a msgspec error as ``<path>: <reason>`` with Anthropic's wording where it has one."""
    text = str(error)
    reason, _, where = text.partition(" - at `")
    path = json_path(where.rstrip("`")) if where else ""
    if match := re.fullmatch(r"Object missing required field `(.+)`", reason):
        return f"{_join(path, match.group(1))}: Field required"
    if match := re.fullmatch(r"Object contains unknown field `(.+)`", reason):
        return f"{_join(path, match.group(1))}: Extra inputs are not permitted"
    if not isinstance(error, msgspec.ValidationError) and not where:
        return f"Invalid JSON: {text}"
    return f"{path}: {reason}" if path else reason


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def decode_params(raw: bytes | msgspec.Raw, *, in_batch: bool) -> MessageCreateParams:
    """Decode and validate one Messages body; raise :class:`ParamsError` with the field path."""
    params = _decode(_params_decoder, raw)
    _check_generation(params, in_batch=in_batch)
    _check_prompt(params)
    _check_thinking(params, params.max_tokens)
    return params


def decode_count_tokens_params(raw: bytes) -> MessageCountTokensParams:
    """Decode and validate a count_tokens body with the same decoder errors and prompt checks
    as :func:`decode_params`; only the ``max_tokens`` rules are left out, having no field.

    Its own struct rather than a create body with a placeholder ``max_tokens``: a placeholder
    would let ``max_tokens`` and ``temperature`` through unrefused, trip the thinking-budget
    rule, and be forwarded by the relay to an upstream count_tokens that refuses it.
    """
    params = _decode(_count_tokens_decoder, raw)
    _check_prompt(params)
    _check_thinking(params, max_tokens=None)
    return params


def _decode(decoder: msgspec.json.Decoder[_Params], raw: bytes | msgspec.Raw) -> _Params:
    try:
        return decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ParamsError(describe_validation_error(exc)) from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"Invalid JSON: not valid UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise ParamsError("Invalid JSON: nested too deeply") from None


def _check_generation(params: MessageCreateParams, *, in_batch: bool) -> None:
    if in_batch:
        if params.stream:
            raise ParamsError("stream: streaming is not supported for requests in a Message Batch")
        if params.speed is not None:
            raise ParamsError("speed: fast mode is not supported for requests in a Message Batch")
        if params.max_tokens < 1:
            raise ParamsError(
                "max_tokens: must be at least 1 for requests in a Message Batch "
                "(cache pre-warming with max_tokens: 0 is not supported in batches)"
            )
    elif params.max_tokens < 0:
        raise ParamsError("max_tokens: Input should be greater than or equal to 0")


def _check_prompt(params: MessageCountTokensParams) -> None:
    """The rules on what the model reads, shared by create and count_tokens."""
    if not params.messages:
        raise ParamsError("messages: List should have at least 1 item")
    last = len(params.messages) - 1
    for index, message in enumerate(params.messages):
        content = message.content
        if isinstance(content, list):
            for block in content:
                if isinstance(block, TextBlockParam) and not block.text.strip():
                    raise ParamsError("messages: text content blocks must be non-empty")
        is_empty = not content or (isinstance(content, str) and not content.strip())
        if is_empty and not (index == last and message.role == "assistant"):
            raise ParamsError(
                f"messages.{index}: all messages must have non-empty content except for "
                "the optional final assistant message"
            )
    if isinstance(params.system, list):
        for index, block in enumerate(params.system):
            if not block.text:
                raise ParamsError(f"system.{index}.text: text content blocks must be non-empty")
    for index, tool in enumerate(params.tools or ()):
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            raise ParamsError(
                f"tools.{index}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )


def _check_thinking(params: MessageCountTokensParams, max_tokens: int | None) -> None:
    """``thinking: enabled`` needs a budget of at least 1024, below ``max_tokens`` when there
    is one (count_tokens has none)."""
    thinking = params.thinking
    if not thinking or thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise ParamsError(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if max_tokens is not None and max_tokens <= budget:
        raise ParamsError("`max_tokens` must be greater than `thinking.budget_tokens`.")


def system_text(params: MessageCountTokensParams) -> str | None:
    """The system prompt as one string (text blocks joined), or ``None``."""
    if params.system is None:
        return None
    if isinstance(params.system, str):
        return params.system
    return "\n\n".join(block.text for block in params.system)


def message_text(message: MessageParam, index: int) -> str:
    """The text of turn ``index``; :class:`ParamsError` for blocks a text-only model cannot take."""
    if isinstance(message.content, str):
        return message.content
    parts: list[str] = []
    for position, block in enumerate(message.content):
        if not isinstance(block, TextBlockParam):
            kind = type(block).__struct_config__.tag
            raise ParamsError(
                f"messages.{index}.content.{position}: content blocks of type '{kind}' "
                "are not supported by this model (text only)"
            )
        parts.append(block.text)
    return "".join(parts)
