"""The rows of issue 7's wire-fidelity table: Messages bodies the SDK's types accept or refuse,
and what becomes of each on the simulated model (``sim``: text, client tools and output
formats, nothing more) and on one that accepts what it cannot honour (``sim-lenient``).
Shared by the in-process tests (tests/integration/api/test_wire_fidelity.py) and the relay
tests (tests/e2e/test_relay_passthrough.py), which send the same bodies through a relay.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

PLAIN = "sim"
LENIENT = "sim-lenient"
MODELS = (PLAIN, LENIENT)
USER: list[dict[str, Any]] = [{"role": "user", "content": "Say something short."}]
STRUCTURED_OUTPUTS = "structured-outputs-2025-11-13"
JSON_FORMAT = {"type": "json_schema", "schema": {"type": "object", "properties": {}}}


@dataclass(frozen=True)
class Names:
    """A refusal whose wording is msgspec's, not pinned here: it starts with ``path: `` and
    quotes the bad ``value``."""

    path: str
    value: str

    def matches(self, message: str) -> bool:
        return message.startswith(f"{self.path}: ") and f"'{self.value}'" in message


#: ``None``: succeeded; a string: ``invalid_request_error`` with exactly that message.
Outcome = str | Names | None


@dataclass(frozen=True)
class Row:
    """A body (merged over a minimal valid one) and its outcome on each model."""

    body: dict[str, Any]
    plain: Outcome
    lenient: Outcome
    betas: tuple[str, ...] = field(default=())

    def params(self, model: str) -> dict[str, Any]:
        return {"model": model, "max_tokens": 8, "messages": USER, **self.body}

    def expected(self, model: str) -> Outcome:
        return self.plain if model == PLAIN else self.lenient


def invalid(message: str | Names) -> Row:
    """A body that fails validation: the same 400 on every model."""
    return Row(body={}, plain=message, lenient=message)


SERVER_TOOL_HISTORY: list[dict[str, Any]] = [
    *USER,
    {
        "role": "assistant",
        "content": [
            {
                "type": "server_tool_use",
                "id": "srvtoolu_01",
                "name": "web_search",
                "input": {"query": "batchyard"},
            },
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srvtoolu_01",
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "https://example.com/",
                        "title": "Example",
                        "encrypted_content": "opaque",
                    }
                ],
            },
            {"type": "text", "text": "Found it."},
        ],
    },
    {"role": "user", "content": "Summarise."},
]
READ_ONLY = "(it reads text, tool_use and tool_result blocks only)"

ROWS: dict[str, Row] = {
    "system-role-message": Row(
        body={"messages": [{"role": "system", "content": "Be terse."}, *USER]},
        plain=None,
        lenient=None,
    ),
    "toolset-without-name": Row(
        body={"tools": [{"type": "computer_toolset_20260801"}]},
        plain=(
            "tools.0.type: server tool 'computer_toolset_20260801' is not supported by "
            f"{PLAIN}; only client tools (with an input_schema) can be called here"
        ),
        lenient=None,
    ),
    "server-tool-blocks-in-history": Row(
        body={"messages": SERVER_TOOL_HISTORY},
        plain=(
            "messages.1.content.0: content blocks of type 'server_tool_use' are not supported "
            f"by {PLAIN} {READ_ONLY}"
        ),
        lenient=None,
    ),
    "container-upload-block": Row(
        body={
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Read the uploaded file."},
                        {"type": "container_upload", "file_id": "file_011"},
                    ],
                }
            ]
        },
        plain=(
            "messages.0.content.1: content blocks of type 'container_upload' are not supported "
            f"by {PLAIN} {READ_ONLY}"
        ),
        lenient=None,
    ),
    "tool-without-input-schema": Row(
        body={"tools": [{"name": "t"}]},
        plain="tools.0.input_schema: Field required",
        lenient="tools.0.input_schema: Field required",
    ),
    "tool-choice-bogus": Row(
        body={"tool_choice": {"type": "bogus"}},
        plain=Names("tool_choice.type", "bogus"),
        lenient=Names("tool_choice.type", "bogus"),
    ),
    "thinking-bogus": Row(
        body={"thinking": {"type": "bogus"}},
        plain=Names("thinking.type", "bogus"),
        lenient=Names("thinking.type", "bogus"),
    ),
    "cache-control-ttl-2h": Row(
        body={
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": "Cache me.",
                            "cache_control": {"type": "ephemeral", "ttl": "2h"},
                        }
                    ],
                }
            ]
        },
        plain=Names("messages.0.content.0.cache_control.ttl", "2h"),
        lenient=Names("messages.0.content.0.cache_control.ttl", "2h"),
    ),
    "unknown-key-in-message": Row(
        body={"messages": [{"role": "user", "content": "Hi.", "bogus": True}]},
        plain="messages.0.bogus: Extra inputs are not permitted",
        lenient="messages.0.bogus: Extra inputs are not permitted",
    ),
    "output-format-under-beta": Row(
        body={"output_format": JSON_FORMAT},
        plain=None,
        lenient=None,
        betas=(STRUCTURED_OUTPUTS,),
    ),
    "output-format-without-beta": Row(
        body={"output_format": JSON_FORMAT},
        plain="output_format: Extra inputs are not permitted",
        lenient="output_format: Extra inputs are not permitted",
    ),
    "context-management-under-beta": Row(
        body={"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
        plain=f"context_management: not supported by {PLAIN}",
        lenient=None,
        betas=("context-management-2025-06-27",),
    ),
    "context-management-without-beta": Row(
        body={"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
        plain="context_management: Extra inputs are not permitted",
        lenient="context_management: Extra inputs are not permitted",
    ),
    "mcp-servers-under-beta": Row(
        body={"mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "ex"}]},
        plain=f"mcp_servers: not supported by {PLAIN}",
        lenient=None,
        betas=("mcp-client-2025-11-20",),
    ),
    "sampling-via-extra-body": Row(
        body={"temperature": 0.5, "top_p": 0.9, "top_k": 5},
        plain=None,
        lenient=None,
    ),
    "temperature-over-1": Row(
        body={"temperature": 1.5},
        plain="temperature: Expected `float` <= 1.0",
        lenient="temperature: Expected `float` <= 1.0",
    ),
}


def call_args(method: Any, row: Row, model: str) -> dict[str, Any]:
    """Keyword arguments for the SDK's ``method`` (``messages.create`` or, with betas,
    ``beta.messages.create``): its own keywords where it has them, ``extra_body`` for the
    rest (SDK 2.14 dropped ``temperature`` and friends as keywords)."""
    keywords = set(inspect.signature(method).parameters)
    params = row.params(model)
    kwargs = {key: value for key, value in params.items() if key in keywords}
    extra = {key: value for key, value in params.items() if key not in keywords}
    if row.betas:
        kwargs["betas"] = list(row.betas)
    return {**kwargs, "extra_body": extra or None}
