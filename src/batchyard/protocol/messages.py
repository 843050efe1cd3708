"""The Messages API as data: request params, the response ``Message``, and params validation.

A body is checked in two steps. First against the official SDK's request types
(:mod:`batchyard.protocol.sdk_params`, generated from the pinned SDK): the one source of
truth for which keys, blocks and tools exist, so a new SDK release is a regenerated module,
not a hand edit here. Then it is read into the lenient structs below, which hold only what
engines use; the rules the types cannot express (non-empty content, ranges, the thinking
budget, batch-only limits) are checked on those.

Batch requests keep their ``params`` as raw bytes until a worker picks them up; only then are
they decoded here. Validation problems surface as :class:`ParamsError` carrying Anthropic's
``<dotted.path>: <reason>`` message, which the batch path turns into an ``errored`` result
and the sync path into a 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from batchyard.errors import ParamsError
from batchyard.protocol import sdk_params

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


# --------------------------------------------------------------------------- input, as read


class SourceParam(Struct, omit_defaults=True):
    """The ``source`` of an image (or document) block: base64 data, a URL or a file id."""

    type: str
    media_type: str = ""
    data: str = ""
    url: str = ""
    file_id: str = ""


class ContentBlockParam(Struct, omit_defaults=True):
    """Any input content block, as an engine reads it: its ``type`` and the fields of the
    blocks some engine translates (text, image, tool_use, tool_result).

    Its shape was checked against the SDK's types already; every other key and every block
    type passes through here, so an engine can name the block it cannot take. A field's
    type is the widest any block gives that key (``source`` is a URL string in a
    ``search_result``; ``content`` is an object in some server-tool results).
    """

    type: str
    text: str = ""
    source: SourceParam | str | None = None
    #: tool_use
    id: str = ""
    name: str = ""
    input: dict[str, Any] | None = None
    #: tool_result
    tool_use_id: str = ""
    content: str | list[ContentBlockParam] | dict[str, Any] | None = None
    is_error: bool | None = None


class MessageParam(Struct, omit_defaults=True):
    """One turn. Beyond its content, a (beta) system turn may carry options of its own,
    read here so an engine that does not honour them can refuse them."""

    role: Literal["user", "assistant", "system"]
    #: ``None`` only for a (beta) system turn, whose content is optional.
    content: str | list[ContentBlockParam] | None = None
    clear_at: Any = None
    output_config: Any = None


class SystemBlockParam(Struct, omit_defaults=True):
    text: str


class Metadata(Struct, omit_defaults=True):
    #: The API's limit; the SDK's type does not carry it.
    user_id: Annotated[str, Meta(max_length=512)] | None = None


class MessageCountTokensParams(Struct, omit_defaults=True):
    """A ``POST /v1/messages/count_tokens`` body, as engines read it.

    :class:`MessageCreateParams` extends it with the generation settings, so whatever renders a
    prompt (an engine's tokenizer, :func:`system_text`) takes either. Every top-level key of
    the SDK's create and count_tokens types, stable and beta, is a field here (a test holds
    them in step), so an engine sees each option a client set and can refuse what it does
    not honour (:func:`batchyard.engines.capabilities.refuse_unsupported`) instead of
    ignoring it. The beta-only keys are accepted only under an ``anthropic-beta`` header.
    """

    model: str
    messages: list[MessageParam]
    system: str | list[SystemBlockParam] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None
    speed: str | None = None
    user_profile_id: str | None = None
    workspace_id: str | None = None
    # beta
    billing_policy: Any = None
    compaction: Any = None
    context_management: Any = None
    mcp_servers: Any = None
    output_format: Any = None


class MessageCreateParams(MessageCountTokensParams, kw_only=True):
    """A ``POST /v1/messages`` body, as engines read it.

    ``kw_only`` lets the required ``max_tokens`` follow the inherited optional fields.
    """

    max_tokens: int
    temperature: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    metadata: Metadata | None = None
    service_tier: str | None = None
    container: Any = None
    inference_geo: str | None = None
    diagnostics: Any = None
    # beta
    fallback_credit_token: Any = None
    fallbacks: Any = None
    thread: Any = None


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
#: The SDK's shape of each body, by (route, beta).
_create_shape: dict[bool, msgspec.json.Decoder[Any]] = {
    False: msgspec.json.Decoder(sdk_params.MessageCreate),
    True: msgspec.json.Decoder(sdk_params.BetaMessageCreate),
}
_count_tokens_shape: dict[bool, msgspec.json.Decoder[Any]] = {
    False: msgspec.json.Decoder(sdk_params.MessageCountTokens),
    True: msgspec.json.Decoder(sdk_params.BetaMessageCountTokens),
}
_Decoded = TypeVar("_Decoded")

#: `` - at `$…`​`` and `` - in `field[i]`​`` (added when a union member is decoded on its own).
_LOCATION = re.compile(r" - (at|in) `([^`]*)`")


def json_path(msgspec_path: str) -> str:
    """``$.messages[0].content`` → ``messages.0.content``: Anthropic's path style. msgspec
    writes a value inside a free-form object as ``[...]`` (no key): those steps are left
    out, so the path names the field that holds it."""
    path = msgspec_path.removeprefix("$").removeprefix(".").replace("[...]", "")
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def describe_validation_error(error: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """Rewrite a msgspec error as ``<path>: <reason>`` with Anthropic's wording where it has one.

    A problem inside a tool (decoded on its own, see :mod:`sdk_params`) carries its path in
    parts, innermost first: ``reason - at `$.type` - in `tools[0]` - at `$``; they are joined.
    """
    text = str(error)
    parts = _LOCATION.split(text)
    reason, locations = parts[0], parts[1:]
    segments = [json_path(where) for where in reversed(locations[1::3])]
    path = ".".join(segment for segment in segments if segment)
    if match := re.fullmatch(r"Object missing required field `(.+)`", reason):
        return f"{_join(path, match.group(1))}: Field required"
    if match := re.fullmatch(r"Object contains unknown field `(.+)`", reason):
        return f"{_join(path, match.group(1))}: Extra inputs are not permitted"
    if not isinstance(error, msgspec.ValidationError) and not locations:
        return f"Invalid JSON: {text}"
    return f"{path}: {reason}" if path else reason


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def decode_params(
    raw: bytes | msgspec.Raw, *, in_batch: bool, beta: bool = False
) -> MessageCreateParams:
    """Decode and validate one Messages body; raise :class:`ParamsError` with the field path.

    ``beta`` (the request named an ``anthropic-beta``) checks it against the SDK's beta types,
    which add keys such as ``context_management`` and ``output_format``.
    """
    decode_checked(_create_shape[beta], raw)
    params = decode_checked(_params_decoder, raw)
    _check_generation(params, in_batch=in_batch)
    _check_prompt(params)
    _check_thinking(params, params.max_tokens)
    return params


def decode_count_tokens_params(raw: bytes, *, beta: bool = False) -> MessageCountTokensParams:
    """Decode and validate a count_tokens body with the same decoder errors and prompt checks
    as :func:`decode_params`; only the ``max_tokens`` rules are left out, having no field.

    Its own types rather than a create body with a placeholder ``max_tokens``: the SDK's
    count_tokens type has no ``max_tokens``, ``temperature`` or ``stream`` and refuses them.
    """
    decode_checked(_count_tokens_shape[beta], raw)
    params = decode_checked(_count_tokens_decoder, raw)
    _check_prompt(params)
    _check_thinking(params, max_tokens=None)
    return params


def decode_checked(
    decoder: msgspec.json.Decoder[_Decoded],
    raw: bytes | msgspec.Raw,
    describe: Callable[[msgspec.ValidationError | msgspec.DecodeError], str] = (
        describe_validation_error
    ),
) -> _Decoded:
    """``raw`` decoded, or :class:`ParamsError` with the message ``describe`` words (the
    Chat Completions surface words its own in OpenAI's path style)."""
    try:
        return decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ParamsError(describe(exc)) from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"Invalid JSON: not valid UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise ParamsError("Invalid JSON: nested too deeply") from None


def _check_generation(params: MessageCreateParams, *, in_batch: bool) -> None:
    check_length_and_stream(params.max_tokens, params.stream, in_batch=in_batch, speed=params.speed)


def check_length_and_stream(
    max_tokens: int, stream: bool | None, *, in_batch: bool, speed: object = None
) -> None:
    """The ``max_tokens``, ``stream`` and ``speed`` rules, which a relay checks too (batching
    depends on them): no stream, no fast mode and at least one token in a batch, no negative
    ``max_tokens``."""
    if in_batch:
        if stream:
            raise ParamsError("stream: streaming is not supported for requests in a Message Batch")
        if speed is not None:
            raise ParamsError("speed: fast mode is not supported for requests in a Message Batch")
        if max_tokens < 1:
            raise ParamsError(
                "max_tokens: must be at least 1 for requests in a Message Batch "
                "(cache pre-warming with max_tokens: 0 is not supported in batches)"
            )
    elif max_tokens < 0:
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
                if block.type == "text" and not block.text.strip():
                    raise ParamsError("messages: text content blocks must be non-empty")
        if content is None and message.role == "system":
            continue  # a beta system turn may carry only its options (``clear_at``)
        is_empty = not content or (isinstance(content, str) and not content.strip())
        if is_empty and not (index == last and message.role == "assistant"):
            raise ParamsError(
                f"messages.{index}: all messages must have non-empty content except for "
                "the optional final assistant message"
            )
    if isinstance(params.system, list):
        for index, system_block in enumerate(params.system):
            if not system_block.text:
                raise ParamsError(f"system.{index}.text: text content blocks must be non-empty")
    for index, tool in enumerate(params.tools or ()):
        name = tool.get("name")
        is_custom = tool.get("type") in (None, "custom")  # server tools have fixed names
        if is_custom and (not isinstance(name, str) or not _TOOL_NAME.fullmatch(name)):
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


def message_text(
    message: MessageParam, index: int, model: str, *, tool_blocks: bool = False
) -> str:
    """The text of turn ``index``; :class:`ParamsError` naming the first block that is not
    text, for a model that reads text only.

    ``tool_blocks`` is for an engine that honours tools: it reads ``tool_use`` and
    ``tool_result`` blocks too, each on its own line as :func:`block_text` renders it.
    """
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    parts: list[str] = []
    for position, block in enumerate(message.content):
        where = f"messages.{index}.content.{position}"
        if block.type == "text":
            parts.append(block.text)
        elif tool_blocks:
            parts.append(f"\n{block_text(block, message.role, where, model)}\n")
        else:
            raise ParamsError(
                f"{where}: content blocks of type '{block.type}' are not supported by {model} "
                "(it reads text only)"
            )
    return "".join(parts)


def block_text(
    block: ContentBlockParam, role: str, where: str, model: str, *, lenient: bool = False
) -> str:
    """A text, ``tool_use`` or ``tool_result`` block as text, for an engine that reads those.

    A tool call reads as its name and JSON input; a tool result as its text, marked when it is
    an error. A call belongs to an assistant turn and a result to a user turn, as the API
    requires. Anything else (another block type, an image inside a result) is
    :class:`ParamsError` naming ``where``, or, when ``lenient``, read as absent.
    """
    if block.type == "text":
        return block.text
    if block.type == "tool_use" and role == "assistant":
        return f"{block.name} {_json_text(block.input or {})}"
    if block.type == "tool_result" and role == "user":
        content = block.content
        if content is None or isinstance(content, str):
            text = content or ""
        elif isinstance(content, list):
            inner = (
                block_text(item, role, f"{where}.content.{position}", model, lenient=lenient)
                for position, item in enumerate(content)
                if item.type == "text" or not lenient
            )
            text = "\n".join(inner)
        elif lenient:
            text = ""
        else:
            raise ParamsError(f"{where}.content: tool results of this form are not supported")
        return f"Error: {text}" if block.is_error else text
    if lenient:
        return ""
    if block.type in ("tool_use", "tool_result"):
        expected = "an assistant" if block.type == "tool_use" else "a user"
        raise ParamsError(f"{where}: a '{block.type}' block belongs in {expected} turn")
    raise ParamsError(
        f"{where}: content blocks of type '{block.type}' are not supported by {model} "
        "(it reads text, tool_use and tool_result blocks only)"
    )


def _json_text(value: dict[str, Any]) -> str:
    """JSON with a space after each separator, as a model writes it (and its words count)."""
    return json.dumps(value, ensure_ascii=False)
