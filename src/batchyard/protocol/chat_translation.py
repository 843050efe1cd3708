"""Chat Completions ⇄ Messages for the OpenAI surface: a client's chat request becomes
Messages create params, which then take the same path as any Messages request (routed,
forwarded by a relay or validated by an engine); the ``Message`` that comes back becomes a
``chat.completion``. Pure, no I/O: the sync route (:mod:`batchyard.api.chat_completions`),
the OpenAI batch worker and its results both call it. The streamed form is
:mod:`batchyard.protocol.chat_stream`; the correspondences themselves (endings, tool choice,
images, tool calls, usage) are :mod:`batchyard.protocol.chat_mapping`, shared with the
``openai`` engine.

Request (docs/protocol.md, "Chat Completions", has the full table):

* leading ``system`` / ``developer`` messages → ``system`` (one text block each); later ones
  → ``role: "system"`` turns where they stand.
* ``user`` text and ``image_url`` parts → text and image blocks; ``assistant`` text and
  ``tool_calls`` → text and ``tool_use`` blocks; consecutive ``tool`` messages → one user
  turn of ``tool_result`` blocks.
* ``tools`` (functions, ``strict`` kept), ``tool_choice``, ``parallel_tool_calls: false``,
  ``stop``, ``max_tokens`` / ``max_completion_tokens`` (:data:`DEFAULT_MAX_TOKENS` when
  neither), ``response_format`` → ``output_config.format``, ``temperature`` (0-1 only),
  ``top_p``, ``user`` (or ``safety_identifier``) → ``metadata.user_id``.
* What no engine here can honour is refused by name, never dropped; hints that change
  nothing in the answer (``store``, ``metadata``, the prompt-cache keys, ``service_tier``
  auto/default) are accepted and dropped.

Errors are :class:`ParamsError` naming the chat field in OpenAI's path style
(``messages[2].content[0].type: …``), which the OpenAI envelope turns into its ``param``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from batchyard.errors import ParamsError, UnreadableAnswer
from batchyard.protocol import chat_completions as chat
from batchyard.protocol.chat_mapping import (
    MESSAGES_TOOL_CHOICES,
    UsageCounts,
    finish_reason,
    image_source,
    tool_input,
)
from batchyard.protocol.chat_paths import ChatPaths
from batchyard.protocol.messages import (
    ContentBlockParam,
    MessageCreateParams,
    MessageParam,
    Metadata,
    SystemBlockParam,
    decode_checked,
)

#: ``max_tokens`` when a request sets neither limit. OpenAI has no required limit (its
#: models stop at their own maximum); Messages requires one, and no single number is every
#: model's maximum, so this is a generous answer length that most models take. A model
#: configured with a lower ``max_output_tokens`` refuses it: such a client sets a limit.
DEFAULT_MAX_TOKENS = 4096

_request_decoder = msgspec.json.Decoder(chat.ChatCompletionRequest)
_encoder = msgspec.json.Encoder()

#: ``reason - at `$.path```, as msgspec words a validation error.
_AT = re.compile(r"^(.*) - at `\$\.?(.*)`$", re.DOTALL)
_FIELD = re.compile(r"^Object (contains unknown|missing required) field `(.+)`$")


#: The ``max_tokens`` a request gets that sets no limit, by model name.
DefaultMaxTokens = Callable[[str], int]


def _default_max_tokens(model: str) -> int:
    return DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class Translation:
    """A chat request as Messages create params (JSON), and where each part came from (to
    name the chat field in an error found later)."""

    params: bytes
    paths: ChatPaths


def messages_body(
    chat_body: bytes, *, in_batch: bool, default_max_tokens: DefaultMaxTokens = _default_max_tokens
) -> bytes:
    """The Messages create params (JSON) equivalent to the Chat Completions request
    ``chat_body``; :class:`ParamsError` naming the chat field that is wrong or has no
    equivalent. ``in_batch``: a line of an OpenAI batch, which must not stream.
    ``default_max_tokens``: the limit for a request that sets none (OpenAI needs none,
    Messages does), given the model it names."""
    return translate(
        decode_request(chat_body), in_batch=in_batch, default_max_tokens=default_max_tokens
    ).params


def decode_request(chat_body: bytes) -> chat.ChatCompletionRequest:
    """The request, decoded strictly: an unknown key anywhere is refused by name."""
    return decode_checked(_request_decoder, chat_body, _describe)


def _describe(error: msgspec.ValidationError | msgspec.DecodeError) -> str:
    """A msgspec error in OpenAI's words, led by the field's path (``messages[0].role``)."""
    text = str(error)
    path, reason = "", text
    if match := _AT.match(text):
        reason, path = match.groups()
    elif not isinstance(error, msgspec.ValidationError):
        return f"Invalid JSON: {text}"
    if match := _FIELD.match(reason):
        kind, name = match.groups()
        if kind == "contains unknown":
            if not path:  # OpenAI's own words for a top-level key it does not know
                return f"Unrecognized request argument supplied: {name}"
            return f"{path}.{name}: Unrecognized argument supplied"
        return f"{path + '.' if path else ''}{name}: Missing required parameter"
    return f"{path}: {reason}" if path else reason


def translate(
    request: chat.ChatCompletionRequest,
    *,
    in_batch: bool,
    default_max_tokens: DefaultMaxTokens = _default_max_tokens,
) -> Translation:
    """The Messages create params for a decoded request (see :func:`messages_body`), with
    the map back to its fields."""
    _refuse_unsupported(request, in_batch=in_batch)
    paths = ChatPaths(
        max_tokens="max_completion_tokens"
        if request.max_tokens is None and request.max_completion_tokens is not None
        else "max_tokens",
        user="safety_identifier" if not request.user and request.safety_identifier else "user",
        single_stop=isinstance(request.stop, str),
    )
    system, turns = _conversation(request.messages, paths)
    tools = [_tool(tool, index) for index, tool in enumerate(request.tools or ())]
    params = MessageCreateParams(
        model=request.model,
        messages=turns,
        system=system or None,
        max_tokens=_max_tokens(request, default_max_tokens),
        temperature=request.temperature,
        top_p=request.top_p,
        stop_sequences=_stop(request.stop),
        stream=True if request.stream else None,
        metadata=_metadata(request),
        tools=[msgspec.to_builtins(tool) for tool in tools] or None,
        tool_choice=_tool_choice(request),
        output_config=_output_config(request.response_format),
    )
    return Translation(_encoder.encode(params), paths)


# --------------------------------------------------------------------------- top-level options


def _refuse_unsupported(request: chat.ChatCompletionRequest, *, in_batch: bool) -> None:
    """Refuse, by name, the first option set to something no engine here honours."""
    for field, refused in _REFUSALS:
        value = getattr(request, field)
        if refused(value):
            raise ParamsError(f"{field}: {_encoder.encode(value).decode()} is not supported")
    if request.n not in (None, 1):
        raise ParamsError(f"n: only n = 1 is supported (got {request.n})")
    if request.stream and in_batch:
        raise ParamsError("stream: streaming is not supported for requests in a batch")
    if request.stream_options is not None and not request.stream:
        raise ParamsError("stream_options: only allowed when stream is true")
    if request.temperature is not None and request.temperature > 1:
        raise ParamsError(
            f"temperature: {request.temperature:g} is above 1, the highest temperature the "
            "models here take (Anthropic's range, 0 to 1)"
        )
    if request.seed is not None and request.temperature != 0:
        raise ParamsError(
            "seed: a seed is not supported when sampling; it is accepted with temperature 0 "
            "(greedy decoding), where it changes nothing"
        )


def _set(value: object) -> bool:
    return value is not None


#: The options refused whenever set to anything but their neutral value, each with the test
#: for "set". A deprecated form (``functions``) has a supported one (``tools``).
_REFUSALS: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("audio", _set),
    ("modalities", lambda value: value not in (None, ["text"])),
    ("logprobs", bool),
    ("top_logprobs", bool),
    ("logit_bias", bool),
    ("presence_penalty", bool),
    ("frequency_penalty", bool),
    ("prediction", _set),
    ("web_search_options", _set),
    ("reasoning_effort", lambda value: value not in (None, "none")),
    ("verbosity", lambda value: value not in (None, "medium")),
    ("service_tier", lambda value: value not in (None, "auto", "default")),
    ("moderation", _set),
    ("functions", _set),
    ("function_call", _set),
)


def _max_tokens(request: chat.ChatCompletionRequest, default: DefaultMaxTokens) -> int:
    if request.max_tokens is not None and request.max_completion_tokens is not None:
        raise ParamsError(
            "max_completion_tokens: set either max_tokens or max_completion_tokens, not both"
        )
    field = "max_tokens" if request.max_tokens is not None else "max_completion_tokens"
    limit = request.max_tokens if request.max_tokens is not None else request.max_completion_tokens
    if limit is None:
        return default(request.model)
    if limit < 1:
        raise ParamsError(f"{field}: must be at least 1 (got {limit})")
    return limit


def _stop(stop: str | list[str] | None) -> list[str] | None:
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else stop
    for index, sequence in enumerate(stops):
        if not sequence:
            where = "stop" if isinstance(stop, str) else f"stop[{index}]"
            raise ParamsError(f"{where}: a stop sequence must not be empty")
    return stops or None


def _metadata(request: chat.ChatCompletionRequest) -> Metadata | None:
    """``user`` (or its successor ``safety_identifier``): who asks, Anthropic's
    ``metadata.user_id``. OpenAI's own ``metadata`` (tags on a stored completion) has no
    counterpart and changes nothing in the answer."""
    user = request.user or request.safety_identifier
    return Metadata(user_id=user) if user else None


def _output_config(response_format: chat.ResponseFormat | None) -> dict[str, Any] | None:
    """``json_schema`` → the same schema under ``output_config.format``; ``json_object`` → a
    schema asking for any object (what JSON mode promises). Structured outputs are always
    strict here, so ``strict: false`` gets more than it asked for, never less."""
    if response_format is None or isinstance(response_format, chat.TextFormat):
        return None
    if isinstance(response_format, chat.JsonObjectFormat):
        schema: dict[str, Any] = {"type": "object"}
    elif response_format.json_schema.schema is None:
        raise ParamsError("response_format.json_schema.schema: Missing required parameter")
    else:
        schema = response_format.json_schema.schema
    return {"format": msgspec.to_builtins(_JsonFormat(schema=schema))}


class _JsonFormat(msgspec.Struct, tag_field="type", tag="json_schema"):
    schema: dict[str, Any]


# --------------------------------------------------------------------------- tools


class _Tool(msgspec.Struct, omit_defaults=True):
    """A custom tool of the Messages API."""

    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


class _ToolChoice(msgspec.Struct, omit_defaults=True):
    type: str
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


#: What a function that takes no arguments (``parameters`` left out) takes.
_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}


def _tool(tool: chat.FunctionTool | chat.CustomTool, index: int) -> _Tool:
    if isinstance(tool, chat.CustomTool):
        raise ParamsError(f"tools[{index}].type: 'custom' tools are not supported (functions are)")
    function = tool.function
    return _Tool(
        name=function.name,
        input_schema=function.parameters if function.parameters is not None else _NO_ARGUMENTS,
        description=function.description,
        strict=function.strict,
    )


def _tool_choice(request: chat.ChatCompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if isinstance(choice, chat.CustomChoice | chat.AllowedToolsChoice):
        kind = "custom" if isinstance(choice, chat.CustomChoice) else "allowed_tools"
        raise ParamsError(f"tool_choice.type: {kind!r} is not supported")
    names = [
        tool.function.name for tool in request.tools or () if isinstance(tool, chat.FunctionTool)
    ]
    if choice not in (None, "none", "auto") and not names:
        raise ParamsError("tool_choice: only allowed when tools are specified")
    if isinstance(choice, chat.FunctionChoice) and choice.function.name not in names:
        raise ParamsError(
            f"tool_choice.function.name: no function named {choice.function.name!r} in tools"
        )
    # Sequential calls only: Anthropic says so on the tool choice, so one is made if need be.
    sequential = request.parallel_tool_calls is False and bool(request.tools)
    if isinstance(choice, chat.FunctionChoice):
        made = _ToolChoice(type="tool", name=choice.function.name)
    elif choice is not None:
        made = _ToolChoice(type=MESSAGES_TOOL_CHOICES[choice])
    elif sequential:
        made = _ToolChoice(type="auto")
    else:
        return None
    if sequential and made.type != "none":
        made.disable_parallel_tool_use = True
    result: dict[str, Any] = msgspec.to_builtins(made)
    return result


# --------------------------------------------------------------------------- messages


def _conversation(
    messages: list[chat.ChatMessage], paths: ChatPaths
) -> tuple[list[SystemBlockParam], list[MessageParam]]:
    """The ``system`` blocks and the turns of a chat's messages, each one's source recorded
    in ``paths``."""
    if not messages:
        raise ParamsError("messages: must contain at least one message")
    system: list[SystemBlockParam] = []
    turns: list[MessageParam] = []
    #: The tool results of the user turn being filled by consecutive ``tool`` messages.
    results: list[ContentBlockParam] | None = None
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if isinstance(message, chat.ToolMessage):
            if results is None:
                results = []
                turns.append(MessageParam(role="user", content=results))
                paths.turns.append(where)
                paths.blocks.append([])
            results.append(_tool_result(message, where))
            paths.blocks[-1].append(where)
            continue
        results = None
        if isinstance(message, chat.AssistantMessage):
            if index == len(messages) - 1:
                raise ParamsError(
                    f"{where}: a final assistant message is not supported (the model would "
                    "continue it rather than answer after it)"
                )
            turns.append(MessageParam(role="assistant", content=_assistant_content(message, where)))
            paths.turns.append(where)
            paths.blocks.append(_assistant_paths(message, where))
        elif isinstance(message, chat.FunctionMessage):
            raise ParamsError(
                f"{where}.role: 'function' messages are not supported (use 'tool' messages)"
            )
        elif message.name is not None:
            raise ParamsError(f"{where}.name: participant names are not supported")
        elif isinstance(message, chat.UserMessage):
            turns.append(MessageParam(role="user", content=_user_content(message, where)))
            paths.turns.append(where)
            content = message.content
            paths.blocks.append(
                [f"{where}.content"]
                if isinstance(content, str)
                else [f"{where}.content[{position}]" for position in range(len(content))]
            )
        elif (text := _system_text(message.content)).strip():  # an empty one says nothing
            if turns:  # after the conversation started: where it stands
                turns.append(MessageParam(role="system", content=text))
                paths.turns.append(where)
                paths.blocks.append([where])
            else:
                system.append(SystemBlockParam(text=text))
                paths.system.append(where)
    if not turns:
        raise ParamsError("messages: must contain a message other than system or developer ones")
    return system, turns


def _system_text(content: str | list[chat.TextPart]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)


def _user_content(message: chat.UserMessage, where: str) -> str | list[ContentBlockParam]:
    content = message.content
    if isinstance(content, str):
        return _non_empty(content, f"{where}.content")
    if not content:
        raise ParamsError(f"{where}.content: must not be empty")
    blocks: list[ContentBlockParam] = []
    for position, part in enumerate(content):
        at = f"{where}.content[{position}]"
        if isinstance(part, chat.TextPart):
            blocks.append(_text_block(part, at))
        elif isinstance(part, chat.ImagePart):
            blocks.append(_image_block(part, at))
        else:
            kind = "input_audio" if isinstance(part, chat.AudioPart) else "file"
            raise ParamsError(f"{at}.type: {kind!r} content parts are not supported")
    return blocks


def _image_block(part: chat.ImagePart, where: str) -> ContentBlockParam:
    """An ``image`` block. ``detail`` ``low`` (a downscaled image) and ``original`` (none at
    all) ask for what Anthropic's image reading does not do; ``auto`` and ``high`` are what
    it does."""
    detail = part.image_url.detail
    if detail in ("low", "original"):
        raise ParamsError(f"{where}.image_url.detail: {detail!r} is not supported")
    try:
        source = image_source(part.image_url.url)
    except ValueError as exc:
        raise ParamsError(f"{where}.image_url.url: {exc}") from None
    return ContentBlockParam(type="image", source=source)


def _assistant_content(message: chat.AssistantMessage, where: str) -> list[ContentBlockParam]:
    for field in ("refusal", "audio", "function_call", "name"):
        if getattr(message, field) is not None:
            raise ParamsError(f"{where}.{field}: not supported in an assistant message")
    blocks: list[ContentBlockParam] = []
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append(ContentBlockParam(type="text", text=content))
    elif content is not None:
        for position, part in enumerate(content):
            at = f"{where}.content[{position}]"
            if isinstance(part, chat.RefusalPart):
                raise ParamsError(f"{at}.type: 'refusal' content parts are not supported")
            blocks.append(_text_block(part, at))
    for position, call in enumerate(message.tool_calls or ()):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{position}]"))
    if not blocks:
        raise ParamsError(f"{where}: an assistant message needs content or tool_calls")
    return blocks


def _assistant_paths(message: chat.AssistantMessage, where: str) -> list[str]:
    """The source of each block :func:`_assistant_content` makes, in its order."""
    content = message.content
    if isinstance(content, str):
        text = [f"{where}.content"] if content else []
    else:
        text = [f"{where}.content[{position}]" for position in range(len(content or ()))]
    calls = [f"{where}.tool_calls[{position}]" for position in range(len(message.tool_calls or ()))]
    return text + calls


def _tool_use(call: chat.FunctionToolCall | chat.CustomToolCall, where: str) -> ContentBlockParam:
    if isinstance(call, chat.CustomToolCall):
        raise ParamsError(f"{where}.type: 'custom' tool calls are not supported")
    arguments = tool_input(call.function.arguments)
    if arguments is None:
        raise ParamsError(f"{where}.function.arguments: must be a JSON object")
    return ContentBlockParam(type="tool_use", id=call.id, name=call.function.name, input=arguments)


def _tool_result(message: chat.ToolMessage, where: str) -> ContentBlockParam:
    content: str | list[ContentBlockParam]
    if isinstance(message.content, str):
        content = message.content
    else:
        content = [
            _text_block(part, f"{where}.content[{position}]")
            for position, part in enumerate(message.content)
        ]
    return ContentBlockParam(type="tool_result", tool_use_id=message.tool_call_id, content=content)


def _text_block(part: chat.TextPart, where: str) -> ContentBlockParam:
    return ContentBlockParam(type="text", text=_non_empty(part.text, f"{where}.text"))


def _non_empty(text: str, where: str) -> str:
    """Anthropic refuses empty (or blank) text; said here with the chat field's name."""
    if not text.strip():
        raise ParamsError(f"{where}: must not be empty")
    return text


# --------------------------------------------------------------------------- answer


class _Block(msgspec.Struct):
    """A content block of a stored ``Message``, as far as a chat answer shows it."""

    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: msgspec.Raw = msgspec.Raw(b"{}")


class _Message(msgspec.Struct):
    """A stored ``Message``, leniently: a relayed one holds whatever its upstream sent."""

    model: str = ""
    content: list[_Block] | None = None
    stop_reason: str | None = None
    usage: UsageCounts | None = None


_message_decoder = msgspec.json.Decoder(_Message)


def chat_completion(message: bytes, *, completion_id: str, created: int) -> bytes:
    """The ``chat.completion`` (JSON) for a ``Message`` (JSON, as stored or answered).

    Text blocks are joined into ``content`` (``null`` when there is none but tool calls);
    ``tool_use`` blocks become ``tool_calls``, their ``input`` the ``arguments`` as it was
    written; other blocks (thinking, server tools: nothing a chat request can ask for) have
    no place in a chat message and are left out. :class:`UnreadableAnswer` if ``message``
    is not a JSON object.
    """
    try:
        answer = _message_decoder.decode(message)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UnreadableAnswer(f"the answer is not a readable Message: {exc}") from None
    blocks = answer.content or []
    text = "".join(block.text for block in blocks if block.type == "text")
    calls = [
        chat.ResponseToolCall(
            id=block.id,
            function=chat.ResponseFunction(name=block.name, arguments=_arguments(block.input)),
        )
        for block in blocks
        if block.type == "tool_use"
    ]
    reply = chat.ResponseMessage(content=text if text or not calls else None)
    if calls:
        reply.tool_calls = calls
    completion = chat.ChatCompletion(
        id=completion_id,
        created=created,
        model=answer.model,
        choices=[chat.Choice(message=reply, finish_reason=finish_reason(answer.stop_reason))],
        usage=(answer.usage or UsageCounts()).chat(),
    )
    return _encoder.encode(completion)


def _arguments(tool_input: msgspec.Raw) -> str:
    """A ``tool_use`` input's JSON text, byte for byte as the engine or upstream wrote it."""
    return bytes(tool_input).decode()
