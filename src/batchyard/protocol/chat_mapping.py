"""What corresponds to what between Anthropic's Messages API and OpenAI's Chat Completions
API, each correspondence written once, for both translations that need it: the ``openai``
engine (Messages request → an upstream's chat request, its answer → a ``Message``;
:mod:`batchyard.engines.openai_http`) and the Chat Completions surface (a client's chat
request → Messages params, our ``Message`` → its answer;
:mod:`batchyard.protocol.chat_translation`). Pure functions and tables, no I/O.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from batchyard.protocol.chat_completions import (
    CompletionUsage,
    FinishReason,
    PromptTokensDetails,
)
from batchyard.protocol.messages import SourceParam, StopReason, Usage

_encoder = msgspec.json.Encoder()

# --------------------------------------------------------------------------- endings

#: ``stop_reason`` → ``finish_reason``. A turn paused by a server tool reads as a finished
#: one (a chat client has nothing to resume it with); running out of context is ``length``,
#: as a chat server reports it.
FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}

#: ``finish_reason`` → ``stop_reason``, but for ``stop``: whether that was the end of the
#: turn or a stop sequence takes the answer's text and the request's sequences to tell.
STOP_REASONS: dict[str, StopReason] = {
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: str | None) -> FinishReason:
    """The ``finish_reason`` of a ``Message`` that ended with ``stop_reason``; ``stop`` for
    one this table does not know (a newer API's, relayed as it came)."""
    return FINISH_REASONS.get(stop_reason or "", "stop")


# --------------------------------------------------------------------------- tool choice

ChatToolChoice = Literal["auto", "required", "none"]

#: ``tool_choice.type`` → the chat ``tool_choice`` string; a named tool (``tool`` ↔
#: ``{"type": "function", ...}``) is the one case with an object on both sides.
CHAT_TOOL_CHOICES: dict[str, ChatToolChoice] = {"auto": "auto", "any": "required", "none": "none"}
#: The chat ``tool_choice`` string → ``tool_choice.type``.
MESSAGES_TOOL_CHOICES: dict[str, str] = {chat: ours for ours, chat in CHAT_TOOL_CHOICES.items()}


# --------------------------------------------------------------------------- images

#: The image types Anthropic's API reads (an ``image`` block's ``media_type``).
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", re.DOTALL)


def image_url(source: SourceParam) -> str:
    """An ``image`` block's ``base64`` or ``url`` source as an ``image_url`` part's URL
    (a ``data:`` URL for base64 data)."""
    if source.type == "url":
        return source.url
    return f"data:{source.media_type};base64,{source.data}"


def image_source(url: str) -> SourceParam:
    """An ``image_url`` part's URL as an ``image`` block's source: a ``data:`` URL (base64,
    of a type Anthropic reads) or an ``http(s)://`` URL; :class:`ValueError` saying why not
    for anything else."""
    if match := _DATA_URL.fullmatch(url):
        media_type, data = match.groups()
        if media_type not in IMAGE_MEDIA_TYPES:
            known = ", ".join(sorted(IMAGE_MEDIA_TYPES))
            raise ValueError(f"images of type {media_type!r} are not supported (only {known})")
        return SourceParam(type="base64", media_type=media_type, data=data)
    if url.startswith(("https://", "http://")):
        return SourceParam(type="url", url=url)
    raise ValueError("an image must be an http(s):// URL or a base64 data: URL")


# --------------------------------------------------------------------------- tool calls


def tool_arguments(tool_input: dict[str, Any]) -> str:
    """A ``tool_use`` block's ``input`` as a tool call's ``arguments`` (JSON text)."""
    return _encoder.encode(tool_input).decode()


def tool_input(arguments: str) -> dict[str, Any] | None:
    """A tool call's ``arguments`` as a ``tool_use`` block's ``input``; empty arguments are
    no arguments. ``None`` if they are not a JSON object (a ``tool_use`` input must be)."""
    try:
        value = msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


# --------------------------------------------------------------------------- usage


class UsageCounts(msgspec.Struct):
    """A ``Message``'s token counts as an answer or a stream event carries them, each of
    which may be missing or ``null`` (a relayed answer holds what its upstream sent)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def updated(self, later: UsageCounts | None) -> UsageCounts:
        """These counts with those ``later`` has (a stream's ``message_delta`` after its
        ``message_start``)."""
        if later is None:
            return self
        return UsageCounts(
            *(
                mine if theirs is None else theirs
                for mine, theirs in zip(
                    msgspec.structs.astuple(self), msgspec.structs.astuple(later), strict=True
                )
            )
        )

    def chat(self) -> CompletionUsage:
        """The counts as a chat answer's usage. Anthropic counts cached prompt tokens apart
        from ``input_tokens``; OpenAI's ``prompt_tokens`` counts every prompt token, the
        cached ones again under ``prompt_tokens_details``."""
        cache_read = self.cache_read_input_tokens or 0
        cache_creation = self.cache_creation_input_tokens or 0
        prompt = (self.input_tokens or 0) + cache_read + cache_creation
        output = self.output_tokens or 0
        details = PromptTokensDetails(cached_tokens=cache_read)
        if cache_creation:
            details.cache_write_tokens = cache_creation
        return CompletionUsage(
            prompt_tokens=prompt,
            completion_tokens=output,
            total_tokens=prompt + output,
            prompt_tokens_details=details,
        )


def message_usage(prompt_tokens: int | None, completion_tokens: int | None) -> Usage:
    """A chat answer's usage as a ``Message``'s: every prompt token is an input token (what
    a chat server cached is not billed apart, as Anthropic's cache reads are); a count a
    server left out is 0."""
    return Usage(input_tokens=prompt_tokens or 0, output_tokens=completion_tokens or 0)
