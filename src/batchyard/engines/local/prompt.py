"""Messages params → the model's chat-template token ids.

A text-only chat model can take a system prompt and alternating user/assistant turns, nothing
else; anything richer is refused with an ``invalid_request_error`` naming the field, rather
than silently dropped, so a batch result never answers a question it did not see.
"""

from __future__ import annotations

from typing import Any

from batchyard.engines.capabilities import TEXT_ONLY, refuse_unsupported
from batchyard.errors import ParamsError
from batchyard.protocol.messages import MessageCountTokensParams, message_text, system_text

Chat = list[dict[str, str]]


def chat_turns(params: MessageCountTokensParams) -> tuple[Chat, str]:
    """The chat to render, plus the text of a final assistant turn to continue (or ``""``).

    Consecutive turns of the same role are joined with a blank line, as Anthropic does. A final
    assistant turn is a prefill: the answer continues it, so it is appended after the
    generation prompt instead of being closed as a finished turn.
    """
    refuse_unsupported(params, TEXT_ONLY, params.model)
    chat: Chat = []
    if (system := system_text(params)) is not None:
        chat.append({"role": "system", "content": system})
    for index, message in enumerate(params.messages):
        text = message_text(message, index, params.model)
        if chat and chat[-1]["role"] == message.role:
            chat[-1]["content"] += "\n\n" + text
        else:
            chat.append({"role": message.role, "content": text})
    prefill = ""
    if chat[-1]["role"] == "assistant":
        prefill = chat.pop()["content"]
    if not any(turn["role"] == "user" for turn in chat):
        raise ParamsError("messages: the conversation must contain at least one user message")
    return chat, prefill


def prompt_ids(tokenizer: Any, params: MessageCountTokensParams) -> list[int]:
    """Token ids of the rendered prompt, ending where the assistant's answer starts."""
    chat, prefill = chat_turns(params)
    text: str = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    ids: list[int] = tokenizer(text + prefill, add_special_tokens=False)["input_ids"]
    return ids
