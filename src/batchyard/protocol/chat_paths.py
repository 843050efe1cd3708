"""Where each part of a translated Chat Completions request came from, so that an error found
after the translation (by Messages validation or by an engine) names the chat request's own
field, as OpenAI's ``param`` does, rather than a Messages path the client never wrote.

The translation merges and moves things: leading system and developer messages become
``system`` blocks, consecutive ``tool`` messages one user turn, ``tools[i].function.parameters``
``tools.i.input_schema``, ``response_format`` ``output_config``, ``user`` ``metadata.user_id``.
:class:`ChatPaths`, filled in as the translation goes, maps a Messages path back;
:meth:`ChatPaths.chat_error` rewrites an error's leading field with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from batchyard.errors import ApiError
from batchyard.protocol.openai_errors import leading_field


@dataclass
class ChatPaths:
    #: ``system.i`` → the chat message it came from.
    system: list[str] = field(default_factory=list)
    #: ``messages.i`` → the chat message it came from (the first of merged tool messages).
    turns: list[str] = field(default_factory=list)
    #: ``messages.i.content.j`` → the chat message or part it came from.
    blocks: list[list[str]] = field(default_factory=list)
    #: The field the request set its limit with.
    max_tokens: str = "max_tokens"
    #: The field ``metadata.user_id`` came from (``user`` or ``safety_identifier``).
    user: str = "user"
    #: ``stop`` was one string rather than a list.
    single_stop: bool = False

    def chat_path(self, path: str) -> str | None:
        """The chat request's field for the Messages field ``path``, if it has one."""
        head, *rest = path.split(".")
        if head == "messages" and rest and rest[0].isdigit():
            return self._in_turn(int(rest[0]), rest[1:])
        if head == "system" and rest and rest[0].isdigit() and int(rest[0]) < len(self.system):
            return self.system[int(rest[0])]
        if head == "tools" and rest and rest[0].isdigit():
            return _tool_path(int(rest[0]), rest[1:])
        if head == "output_config":
            if rest[:2] == ["format", "schema"]:
                return ".".join(["response_format.json_schema.schema", *rest[2:]])
            return "response_format"
        if head == "stop_sequences":
            return "stop" if self.single_stop or not rest else f"stop[{rest[0]}]"
        simple = {
            "metadata": self.user,
            "max_tokens": self.max_tokens,
            "tool_choice": "tool_choice",
            "temperature": "temperature",
            "top_p": "top_p",
            "model": "model",
        }
        return simple.get(head)

    def _in_turn(self, turn: int, rest: list[str]) -> str | None:
        if turn >= len(self.turns):
            return None
        if rest[:1] == ["content"] and len(rest) > 1 and rest[1].isdigit():
            blocks = self.blocks[turn]
            return blocks[int(rest[1])] if int(rest[1]) < len(blocks) else self.turns[turn]
        if rest[:1] == ["content"] and self.blocks[turn][:1] == [f"{self.turns[turn]}.content"]:
            return f"{self.turns[turn]}.content"
        return self.turns[turn]

    def chat_error(self, error: ApiError) -> ApiError:
        """``error`` with its leading Messages field replaced by the chat field it came from
        (message and ``param``); other errors as they are."""
        if error.error_type != "invalid_request_error":
            return error
        found = leading_field(error.message)
        mapped = self.chat_path(found) if found else None
        if found is None or mapped is None:
            return error
        error.message = mapped + error.message[len(found) :]
        error.args = (error.message,)
        error.param = mapped
        return error


def _tool_path(index: int, rest: list[str]) -> str:
    tool = f"tools[{index}]"
    if not rest:
        return tool
    if rest[0] == "input_schema":
        return ".".join([f"{tool}.function.parameters", *rest[1:]])
    return f"{tool}.function.{rest[0]}"
