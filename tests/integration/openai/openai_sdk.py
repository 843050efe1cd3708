"""Helpers of the review tests (branch wip-review)."""

from __future__ import annotations

import json
from typing import Any

ENDPOINT = "/v1/chat/completions"
#: The demo config's cap (examples/demo.toml: ``max_output_tokens = 2048``).
CAPPED = (
    '\n[[models]]\nname = "capped"\nengine = "simulated"\nlatency_ms = 1\n'
    "max_output_tokens = 2048\n"
)


def chat_line(custom_id: str, model: str = "sim", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {
            "model": model,
            "messages": [{"role": "user", "content": f"Say something about {custom_id}"}],
            **body,
        },
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)
