"""An upstream engine for any server that speaks OpenAI's ``POST /v1/chat/completions``:
vLLM, SGLang, llama.cpp, Ollama, ``transformers serve``, OpenAI itself.

Unlike the ``anthropic`` relay it cannot pass the client's body on: the two APIs differ, so
this is an :class:`~batchyard.engines.base.Engine` that reads the validated params, refuses
by name what has no Chat Completions equivalent, translates the rest, and translates the
answer back into a ``Message``. Both directions are in this module.

Params → chat request:

* ``system`` (a string or text blocks, joined by a blank line) → a first ``system`` message;
  a (beta) ``role: "system"`` turn → a ``system`` message where it stands.
* user and assistant text → their messages (a user turn of text only as one string, the
  form every server takes); ``image`` blocks (base64 → a ``data:`` URL, ``url`` → that URL)
  → ``image_url`` parts; assistant ``tool_use`` blocks → ``tool_calls`` (input as JSON text);
  user ``tool_result`` blocks → ``tool`` messages before the rest of the turn, their text
  joined by newlines and prefixed ``Error: `` when ``is_error``.
* custom ``tools`` → ``function`` tools (``input_schema`` → ``parameters``, ``strict`` kept);
  ``tool_choice`` auto / any / tool / none → ``"auto"`` / ``"required"`` / that function /
  ``"none"``; ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``.
* ``max_tokens`` → ``max_tokens``, not ``max_completion_tokens``: every OpenAI-compatible
  server reads it (Ollama and older llama.cpp read nothing else), and OpenAI takes it for all
  but its reasoning models. ``max_tokens: 0`` is refused (no server generates nothing).
* ``stop_sequences`` → ``stop``; ``temperature``, ``top_p`` as they are (both APIs divide
  the logits by the temperature; Anthropic's 0-1 lies inside OpenAI's 0-2);
  ``metadata.user_id`` → ``user``. ``top_k`` is not OpenAI's: it is sent only with the
  option ``extra_sampling = true`` (vLLM, SGLang and llama.cpp take it; OpenAI and
  ``transformers serve`` refuse it) and refused by name otherwise.
* Refused as ``invalid_request_error`` naming the field
  (:func:`~batchyard.engines.capabilities.refuse_unsupported` and the checks here):
  thinking other than disabled, ``output_config``, server tools and toolsets, custom-tool
  options with no equivalent (``defer_loading``, ``input_examples``, ``allowed_callers``),
  content blocks other than text, image, tool_use and tool_result (documents, search
  results, thinking, server-tool echoes), images by file id, non-text tool results, a
  non-empty final assistant turn (a prefill: a chat server would answer it as a finished
  turn, not continue it), ``container``, ``context_management``, ``mcp_servers``.
  ``cache_control``, ``service_tier`` and the other hints that change nothing in the answer
  are dropped.

Answer → ``Message``: the text → a text block; ``tool_calls`` → ``tool_use`` blocks (the
arguments must be a JSON object, else a retryable ``api_error``); ``finish_reason`` ``stop``
→ ``end_turn`` or ``stop_sequence``, ``length`` → ``max_tokens``, ``tool_calls`` (or any
answer with tool calls) → ``tool_use``, ``content_filter`` → ``refusal``, anything else
(vLLM's ``abort``) a retryable ``api_error``; ``usage.prompt_tokens`` /
``completion_tokens`` → ``input_tokens`` / ``output_tokens``; ``model`` the client's.

Which stop sequence ended the answer: OpenAI's API does not say, and servers differ in
whether the stop string stays in the text. The rule, for ``finish_reason: "stop"``:
the server's own report if it names one of the request's sequences (vLLM ``stop_reason``,
SGLang ``matched_stop``); else a sequence the text ends with (``transformers serve`` keeps
it in the text; the longest if several), cut from the text as Anthropic's API does; else
``end_turn`` (OpenAI cuts it and says nothing, so a stop there reads as the end of the turn).

``stream: true`` asks the upstream for its SSE (with ``stream_options.include_usage``) and
passes text to the :class:`~batchyard.engines.base.AnswerSink` as it arrives, holding back
only a tail that could still turn out to be a stop sequence; tool calls are sent whole once
the answer is complete. The prompt's token count comes with the last chunk, so a live
stream's ``message_start`` says 0 input tokens and its ``message_delta`` the real count.

``count_tokens`` asks vLLM's ``POST /tokenize`` (at the server's root, ``base_url`` less
``/v1``) for the same rendered chat, which counts what ``usage.prompt_tokens`` does. The
OpenAI API has no counting route: an upstream without this one (404 or 405) makes the count
an ``invalid_request_error`` saying so, rather than an estimate the create would not match.

Upstream errors: 429 → ``rate_limit_error`` with its ``retry-after``; 408 and 504 →
``timeout_error``; other 5xx → ``api_error`` (all retried); any other status →
``invalid_request_error`` with the upstream's message; a 2xx that cannot be read is an
:class:`~batchyard.errors.UnreadableAnswer`.

Options::

    base_url = "http://gpu-box:8000/v1"  # up to and including /v1
    api_key_env = "OPENAI_API_KEY"       # or api_key = "..."; none: no Authorization header
    upstream_model = "Qwen/Qwen3-8B"     # default: the configured model name
    max_connections = 64
    extra_sampling = false               # true: send top_k (vLLM, SGLang, llama.cpp)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from batchyard import ids
from batchyard.config import ModelConfig, engine_options
from batchyard.engines.base import AnswerSink
from batchyard.engines.capabilities import Capabilities, refuse_unsupported
from batchyard.engines.upstream import read_body, read_error_body, send
from batchyard.errors import ApiError, EngineError, ParamsError, UnreadableAnswer
from batchyard.protocol.chat_mapping import (
    CHAT_TOOL_CHOICES,
    STOP_REASONS,
    image_url,
    message_usage,
    tool_arguments,
    tool_input,
)
from batchyard.protocol.errors import ErrorType
from batchyard.protocol.messages import (
    ContentBlock,
    ContentBlockParam,
    Message,
    MessageCountTokensParams,
    MessageCreateParams,
    MessageParam,
    SourceParam,
    StopReason,
    TextBlock,
    ToolUseBlock,
    system_text,
)
from batchyard.protocol.openai_chat import (
    AnswerFunction,
    AnswerMessage,
    AnswerToolCall,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChatRequest,
    Choice,
    CompletionUsage,
    ContentPart,
    ErrorBody,
    ErrorDetail,
    FunctionCall,
    FunctionDefinition,
    FunctionName,
    FunctionTool,
    ImagePart,
    ImageUrl,
    NamedToolChoice,
    StreamOptions,
    SystemMessage,
    TextPart,
    TokenizeAnswer,
    TokenizeRequest,
    ToolCall,
    ToolChoice,
    ToolMessage,
    UserMessage,
)
from batchyard.protocol.ratelimits import RateLimits, read_rate_limits
from batchyard.timeutil import now_us

#: Tools, images and tool results translate; thinking and output formats do not.
CAPABILITIES = Capabilities(tools=True, image_input=True)

#: Keys of a custom tool that translate (``strict``) or change nothing in the answer.
_TOOL_KEYS = frozenset(
    {
        "type",
        "name",
        "description",
        "input_schema",
        "strict",
        "cache_control",
        "eager_input_streaming",
    }
)

_encoder = msgspec.json.Encoder()
_completion_decoder = msgspec.json.Decoder(ChatCompletion)
_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_tokenize_decoder = msgspec.json.Decoder(TokenizeAnswer)
_error_decoder = msgspec.json.Decoder(ErrorBody)


class OpenAIOptions(msgspec.Struct, forbid_unknown_fields=True):
    base_url: str = "https://api.openai.com/v1"
    api_key: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    upstream_model: str = ""
    max_connections: int = 64
    extra_sampling: bool = False


class OpenAIEngine:
    """Answers each request with one ``{base_url}/chat/completions`` call."""

    def __init__(self, model: ModelConfig, options: OpenAIOptions) -> None:
        self._options = options
        self._upstream_model = options.upstream_model or model.name
        self._base_url = options.base_url.rstrip("/")
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_config(cls, model: ModelConfig) -> OpenAIEngine:
        return cls(model, engine_options(model, OpenAIOptions))

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    @property
    def upstream(self) -> bool:
        """It calls an OpenAI-compatible server: its ``x-ratelimit-*`` headers pace the calls."""
        return True

    @property
    def concurrency(self) -> int:
        """As many calls as it keeps connections (a GPU server batches what it is sent)."""
        return self._options.max_connections

    @property
    def max_input_tokens(self) -> None:
        """Unknown here, as :attr:`max_output_tokens` is."""
        return None

    @property
    def max_output_tokens(self) -> None:
        """Unknown here (OpenAI's ``/v1/models`` does not say); the upstream refuses a
        ``max_tokens`` above its own limit."""
        return None

    async def start(self) -> None:
        key = self._options.api_key or os.environ.get(self._options.api_key_env, "")
        self._client = httpx.AsyncClient(
            headers={"authorization": f"Bearer {key}"} if key else {},
            limits=httpx.Limits(max_connections=self._options.max_connections),
            # The caller enforces the model's timeout_seconds; this only bounds connecting.
            timeout=httpx.Timeout(None, connect=10.0),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def create_message(
        self, params: MessageCreateParams, sink: AnswerSink | None = None
    ) -> Message:
        request = chat_request(params, self._upstream_model, top_k=self._options.extra_sampling)
        url = f"{self._base_url}/chat/completions"
        if sink is None or not sink.streams:
            response = await self._open(url, _encoder.encode(request))
            if sink is not None and (limits := _limits(response)) is not None:
                sink.rate_limits(limits)
            content = await read_body(response)
            try:
                completion = _completion_decoder.decode(content)
            except msgspec.DecodeError as exc:
                raise UnreadableAnswer(
                    f"the upstream's answer is no chat completion: {exc}"
                ) from None
            return answer_message(completion, params)
        request.stream, request.stream_options = True, StreamOptions(include_usage=True)
        stream = StreamedAnswer(params.stop_sequences or [], sink)
        response = await self._open(url, _encoder.encode(request))
        if (limits := _limits(response)) is not None:
            sink.rate_limits(limits)
        await _read_stream(response, stream)
        return answer_message(stream.completion(), params)

    async def count_tokens(self, params: MessageCountTokensParams) -> int:
        messages, tools = chat_prompt(params)
        request = TokenizeRequest(model=self._upstream_model, messages=messages, tools=tools)
        no_route = ApiError(
            "invalid_request_error",
            f"count_tokens: not supported by {params.model} (its OpenAI-compatible server has "
            "no POST /tokenize, the route vLLM counts with)",
        )
        url = f"{self._base_url.removesuffix('/v1')}/tokenize"
        response = await self._open(url, _encoder.encode(request), missing=no_route)
        try:
            return _tokenize_decoder.decode(await read_body(response)).count
        except msgspec.DecodeError as exc:
            raise UnreadableAnswer(
                f"the upstream's /tokenize answer is unreadable: {exc}"
            ) from None

    async def _open(
        self, url: str, body: bytes, *, missing: ApiError | None = None
    ) -> httpx.Response:
        """POST ``body`` to ``url``: the response once its status is a 2xx (its body still
        to be read), else the upstream's error (``missing`` for a 404 or 405, if given)."""
        if self._client is None:
            raise EngineError("api_error", "the openai engine is not started")
        request = self._client.build_request(
            "POST", url, content=body, headers={"content-type": "application/json"}
        )
        response = await send(self._client, request)
        if response.is_success:
            return response
        content = await read_error_body(response)
        if missing is not None and response.status_code in (404, 405):
            raise missing
        raise upstream_error(response, content)


async def _read_stream(response: httpx.Response, stream: StreamedAnswer) -> None:
    """Feed ``stream`` the ``data:`` events of ``response`` until ``[DONE]`` or its end."""
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # comments, event names, blank lines
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = _chunk_decoder.decode(data)
            except msgspec.DecodeError as exc:
                raise UnreadableAnswer(f"the upstream sent an unreadable chunk: {exc}") from None
            stream.feed(chunk)
    except httpx.TransportError as exc:
        raise UnreadableAnswer(f"the upstream's stream broke off: {exc!r}") from None
    finally:
        await response.aclose()


# --------------------------------------------------------------------------- params → request


def chat_request(params: MessageCreateParams, upstream_model: str, *, top_k: bool) -> ChatRequest:
    """The chat completions request for ``params`` (not streamed); :class:`ParamsError`
    naming the first field that has no equivalent. ``top_k``: the server takes ``top_k``."""
    model = params.model
    if params.max_tokens < 1:
        raise ParamsError(
            f"max_tokens: {params.max_tokens} is not supported by {model} (an "
            "OpenAI-compatible server generates at least one token)"
        )
    if params.top_k is not None and not top_k:
        raise ParamsError(
            f"top_k: not supported by {model} (set extra_sampling = true for a server that "
            "takes top_k, such as vLLM)"
        )
    messages, tools = chat_prompt(params)
    choice, parallel = _tool_choice(params.tool_choice)
    return ChatRequest(
        model=upstream_model,
        messages=messages,
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        stop=params.stop_sequences or None,
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        user=params.metadata.user_id if params.metadata else None,
    )


def chat_prompt(
    params: MessageCountTokensParams,
) -> tuple[list[ChatMessage], list[FunctionTool] | None]:
    """The chat messages and function tools of ``params``, what the model reads (create and
    count alike); :class:`ParamsError` naming the first field that has no equivalent."""
    model = params.model
    refuse_unsupported(params, CAPABILITIES, model)
    tools = [_function_tool(tool, index, model) for index, tool in enumerate(params.tools or ())]
    messages: list[ChatMessage] = []
    if (system := system_text(params)) is not None:
        messages.append(SystemMessage(content=system))
    last = len(params.messages) - 1
    for index, turn in enumerate(params.messages):
        if index == last and turn.role == "assistant":
            if turn.content:
                raise ParamsError(
                    f"messages.{index}: a final assistant turn (prefill) is not supported by "
                    f"{model} (a chat completions server answers it as a finished turn)"
                )
            continue  # an empty final assistant turn asks for nothing
        messages += _turn(turn, index, model)
    return messages, tools or None


def _function_tool(tool: dict[str, Any], index: int, model: str) -> FunctionTool:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise ParamsError(
            f"tools.{index}: tools of type {kind!r} are not supported by {model} "
            "(it calls custom tools only)"
        )
    for key, value in tool.items():
        if key not in _TOOL_KEYS and value is not None:
            raise ParamsError(f"tools.{index}.{key}: not supported by {model}")
    definition = FunctionDefinition(
        name=tool["name"],
        parameters=tool["input_schema"],
        description=tool.get("description"),
        strict=tool.get("strict"),
    )
    return FunctionTool(function=definition)


def _tool_choice(choice: dict[str, Any] | None) -> tuple[ToolChoice | None, bool | None]:
    """``tool_choice`` and ``parallel_tool_calls`` for Anthropic's ``tool_choice``."""
    if not choice:
        return None, None
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if choice["type"] == "tool":
        return NamedToolChoice(function=FunctionName(name=choice["name"])), parallel
    return CHAT_TOOL_CHOICES[choice["type"]], parallel


def _turn(turn: MessageParam, index: int, model: str) -> list[ChatMessage]:
    """The chat messages of one turn: a user turn's tool results come first, as ``tool``
    messages (OpenAI wants them right after the assistant's ``tool_calls``)."""
    if turn.content is None or isinstance(turn.content, str):
        text = turn.content or ""  # no content: a (beta) system turn of options alone
        if turn.role == "system":
            return [SystemMessage(content=text)]
        return [UserMessage(content=text) if turn.role == "user" else AssistantMessage(text)]
    where = f"messages.{index}.content"
    if turn.role == "system":
        return [SystemMessage(content=_text_of(turn.content, where, model))]
    if turn.role == "assistant":
        return [_assistant(turn.content, where, model)]
    messages: list[ChatMessage] = []
    parts: list[ContentPart] = []
    for position, block in enumerate(turn.content):
        if block.type == "tool_result":
            messages.append(_tool_message(block, f"{where}.{position}", model))
        elif block.type == "text":
            parts.append(TextPart(text=block.text))
        elif block.type == "image":
            parts.append(_image_part(block, f"{where}.{position}", model))
        else:
            raise _unsupported_block(block, f"{where}.{position}", model)
    texts = [part.text for part in parts if isinstance(part, TextPart)]
    if len(texts) < len(parts):
        messages.append(UserMessage(content=parts))
    elif texts:  # text only: one string, the form every server takes
        messages.append(UserMessage(content="".join(texts)))
    return messages


def _assistant(blocks: list[ContentBlockParam], where: str, model: str) -> AssistantMessage:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for position, block in enumerate(blocks):
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            function = FunctionCall(name=block.name, arguments=tool_arguments(block.input or {}))
            calls.append(ToolCall(id=block.id, function=function))
        else:
            raise _unsupported_block(block, f"{where}.{position}", model)
    return AssistantMessage(content="".join(texts) if texts else None, tool_calls=calls or None)


def _tool_message(block: ContentBlockParam, where: str, model: str) -> ToolMessage:
    content = block.content
    if content is None or isinstance(content, str):
        text = content or ""
    elif isinstance(content, list):
        text = _text_of(content, f"{where}.content", model, joiner="\n")
    else:
        raise _unsupported_block(block, where, model)
    if block.is_error:
        text = f"Error: {text}"
    return ToolMessage(tool_call_id=block.tool_use_id, content=text)


def _text_of(blocks: list[ContentBlockParam], where: str, model: str, joiner: str = "") -> str:
    """The text of blocks that must all be text (a system turn, a tool result)."""
    for position, block in enumerate(blocks):
        if block.type != "text":
            raise _unsupported_block(block, f"{where}.{position}", model)
    return joiner.join(block.text for block in blocks)


def _image_part(block: ContentBlockParam, where: str, model: str) -> ImagePart:
    source = block.source
    if not isinstance(source, SourceParam) or source.type not in ("base64", "url"):
        kind = source.type if isinstance(source, SourceParam) else source
        raise ParamsError(
            f"{where}.source: images of source type {kind!r} are not supported by {model}"
        )
    return ImagePart(image_url=ImageUrl(url=image_url(source)))


def _unsupported_block(block: ContentBlockParam, where: str, model: str) -> ParamsError:
    return ParamsError(
        f"{where}: content blocks of type '{block.type}' are not supported by {model}"
    )


# --------------------------------------------------------------------------- answer → Message


def answer_message(completion: ChatCompletion, params: MessageCreateParams) -> Message:
    """The ``Message`` for the upstream's answer to ``params`` (its first choice)."""
    if not completion.choices:
        raise UnreadableAnswer("the upstream's answer has no choices")
    choice = completion.choices[0]
    calls = [_tool_use(call) for call in choice.message.tool_calls or ()]
    text, stop_reason, stop_sequence = _ending(choice, params.stop_sequences or [], bool(calls))
    content: list[ContentBlock] = [TextBlock(text=text)] if text else []
    content += calls
    usage = completion.usage or CompletionUsage()
    return Message(
        id=ids.message_id(),
        model=params.model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=message_usage(usage.prompt_tokens, usage.completion_tokens),
    )


def _ending(choice: Choice, stops: list[str], called: bool) -> tuple[str, StopReason, str | None]:
    """The answer's text, stop reason and stop sequence (see the module docstring)."""
    text = choice.message.content or ""
    finish = choice.finish_reason
    if called:
        return text, "tool_use", None
    if finish in STOP_REASONS:
        return text, STOP_REASONS[finish], None
    if finish != "stop":
        raise EngineError(
            "api_error", f"the upstream ended its answer with finish_reason {finish!r}"
        )
    for reported in (choice.stop_reason, choice.matched_stop):
        if isinstance(reported, str) and reported in stops:
            return text, "stop_sequence", reported
    kept = max((stop for stop in stops if stop and text.endswith(stop)), key=len, default=None)
    if kept is not None:
        return text[: -len(kept)], "stop_sequence", kept
    return text, "end_turn", None


def _tool_use(call: AnswerToolCall) -> ToolUseBlock:
    function = call.function or AnswerFunction()
    arguments = tool_input(function.arguments)
    if arguments is None:
        raise EngineError(
            "api_error",
            f"the upstream called tool {function.name!r} with arguments that are not a JSON "
            f"object: {function.arguments[:200]!r}",
        )
    return ToolUseBlock(id=call.id or ids.tool_use_id(), name=function.name, input=arguments)


# --------------------------------------------------------------------------- streaming


@dataclass
class _CallPieces:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamedAnswer:
    """A streamed answer put together from its chunks, its text passed on as it is final.

    Text that could still be the start of a stop sequence is held back until the next chunk
    says otherwise, so what the sink got is always a prefix of the answer's final text (a
    server that keeps the stop sequence in its text, cut here at the end, never shows it).
    """

    def __init__(self, stops: list[str], sink: AnswerSink) -> None:
        self._stops = [stop for stop in stops if stop]
        self._sink = sink
        self._text = ""
        self._sent = 0
        self._calls: dict[int, _CallPieces] = {}
        self._choice = Choice(message=AnswerMessage())
        self._usage: CompletionUsage | None = None

    def feed(self, chunk: ChatCompletionChunk) -> None:
        if chunk.error is not None:
            error = chunk.error
            message = error.message if isinstance(error, ErrorDetail) else error
            raise EngineError("api_error", f"the upstream failed mid-answer: {message}")
        self._usage = chunk.usage or self._usage
        for choice in chunk.choices:
            if choice.finish_reason is not None:
                self._choice.finish_reason = choice.finish_reason
                self._choice.stop_reason = choice.stop_reason
                self._choice.matched_stop = choice.matched_stop
            delta = choice.delta
            if delta is None:
                continue
            for piece in delta.tool_calls or ():
                call = self._calls.setdefault(piece.index, _CallPieces())
                call.id = piece.id or call.id
                if piece.function is not None:
                    call.name = piece.function.name or call.name
                    call.arguments.append(piece.function.arguments or "")
            if delta.content:
                self._text += delta.content
                self._release()

    def _release(self) -> None:
        """Pass on the text that no stop sequence can still end in."""
        text = self._text
        held = max(
            (
                size
                for stop in self._stops
                for size in range(min(len(stop), len(text)), 0, -1)
                if text.endswith(stop[:size])
            ),
            default=0,
        )
        final = len(text) - held
        if final > self._sent:
            self._sink.text(text[self._sent : final])
            self._sent = final

    def completion(self) -> ChatCompletion:
        """The whole answer, as a non-streamed one would have been."""
        if self._choice.finish_reason is None:
            raise UnreadableAnswer("the upstream's stream ended before its answer did")
        calls = [
            AnswerToolCall(id=call.id, function=AnswerFunction(call.name, "".join(call.arguments)))
            for _, call in sorted(self._calls.items())
        ]
        self._choice.message = AnswerMessage(content=self._text, tool_calls=calls or None)
        return ChatCompletion(choices=[self._choice], usage=self._usage)


# --------------------------------------------------------------------------- errors


def upstream_error(response: httpx.Response, content: bytes) -> EngineError:
    """The upstream's refusal as the Anthropic error type a client (or the retry policy)
    acts on; its own message kept."""
    status = response.status_code
    message = f"upstream answered HTTP {status}"
    if detail := _error_message(content):
        message += f": {detail}"
    if status in (408, 504):
        return EngineError("timeout_error", message)
    if status == 429 or status >= 500:
        # The limits (and their retry-after) matter where the call is retried and paced.
        error_type: ErrorType = "rate_limit_error" if status == 429 else "api_error"
        return EngineError(error_type, message, limits=_limits(response))
    return EngineError("invalid_request_error", message)


def _limits(response: httpx.Response) -> RateLimits | None:
    """The upstream's ``x-ratelimit-*`` (and ``retry-after``, seconds or an HTTP date)."""
    return read_rate_limits(response.headers, now_us())


def _error_message(content: bytes) -> str:
    try:
        body = _error_decoder.decode(content)
    except msgspec.DecodeError:
        return content[:500].decode(errors="replace").strip()
    if isinstance(body.error, ErrorDetail):
        return body.error.message
    if body.detail is not None:
        return (
            body.detail if isinstance(body.detail, str) else _encoder.encode(body.detail).decode()
        )
    return body.error or body.message or ""
