"""Issue 7's wire-fidelity rows that SDK 0.75's types can express, sent by that SDK.

Run as ``python wire_rows_old_sdk.py BASE_URL API_KEY`` with SDK 0.75 first on ``sys.path``
(test_wire_fidelity_old_sdk.py does). Makes each call and reports what came back, one JSON
line: ``{"sdk": ..., "sync": {id: outcome}, "batch": {id: outcome}}``, an outcome being
``{"type": "succeeded", ...}`` or ``{"type": "errored", "status", "error_type", "message"}``.
The expectations live in the test, so a wrong answer is a test failure with the row's name,
not a crash here.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import anthropic

MODELS = ["sim", "sim-lenient"]  # the test may name more (a relayed model) on the command line
USER = [{"role": "user", "content": "Say something short."}]
STRUCTURED_OUTPUTS = "structured-outputs-2025-11-13"
JSON_FORMAT = {"type": "json_schema", "schema": {"type": "object", "properties": {}}}
LOOKUP = {
    "name": "lookup",
    "description": "Look a word up.",
    "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}},
}

#: Row → keyword arguments of ``messages.create`` (0.75 has keywords for all of these).
STABLE: dict[str, dict[str, Any]] = {
    "system-param": {"system": "Be terse."},
    "custom-tool": {"tools": [LOOKUP]},
    "sampling-kwargs": {"temperature": 0.5, "top_p": 0.9, "top_k": 5},
    "temperature-over-1": {"temperature": 1.5},
}


def outcome(create: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    try:
        message = create(**kwargs)
    except anthropic.APIStatusError as exc:
        body: Any = exc.body
        return {
            "type": "errored",
            "status": exc.status_code,
            "error_type": body["error"]["type"],
            "message": body["error"]["message"],
        }
    return {"type": "succeeded", "model": message.model, "content": len(message.content)}


def sync_rows(client: anthropic.Anthropic) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for model in MODELS:
        base: dict[str, Any] = {"model": model, "max_tokens": 8, "messages": USER}
        for row, kwargs in STABLE.items():
            seen[f"{row}--{model}"] = outcome(client.messages.create, **base, **kwargs)
        seen[f"output-format-under-beta--{model}"] = outcome(
            client.beta.messages.create,
            **base,
            betas=[STRUCTURED_OUTPUTS],
            output_format=JSON_FORMAT,
        )
        seen[f"output-format-without-beta--{model}"] = outcome(
            client.messages.create, **base, extra_body={"output_format": JSON_FORMAT}
        )
    return seen


def batch_rows(client: anthropic.Anthropic) -> dict[str, dict[str, Any]]:
    """The stable rows in one batch; the beta ``output_format`` row in a second, made with
    ``client.beta.messages.batches`` and its beta (0.75 sends it as ``anthropic-beta``)."""
    stable: list[Any] = [
        {
            "custom_id": f"{row}--{model}",
            "params": {"model": model, "max_tokens": 8, "messages": USER, **kwargs},
        }
        for model in MODELS
        for row, kwargs in STABLE.items()
    ]
    beta: list[Any] = [
        {
            "custom_id": f"output-format-under-beta--{model}",
            "params": {
                "model": model,
                "max_tokens": 8,
                "messages": USER,
                "output_format": JSON_FORMAT,
            },
        }
        for model in MODELS
    ]
    seen = run_batch(client.messages.batches, stable, {})
    seen |= run_batch(client.beta.messages.batches, beta, {"betas": [STRUCTURED_OUTPUTS]})
    return seen


def run_batch(
    batches: Any, requests: list[Any], options: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    batch = batches.create(requests=requests, **options)
    deadline = time.monotonic() + 60
    while batch.processing_status != "ended":
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
        batch = batches.retrieve(batch.id, **options)
    seen: dict[str, dict[str, Any]] = {}
    for line in batches.results(batch.id, **options):
        result = line.result
        if result.type == "succeeded":
            seen[line.custom_id] = {
                "type": "succeeded",
                "model": result.message.model,
                "service_tier": result.message.usage.service_tier,
            }
        elif result.type == "errored":
            seen[line.custom_id] = {
                "type": "errored",
                "error_type": result.error.error.type,
                "message": result.error.error.message,
            }
        else:
            seen[line.custom_id] = {"type": result.type}
    return seen


if __name__ == "__main__":
    base_url, api_key, *more_models = sys.argv[1:]
    MODELS.extend(more_models)
    client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0)
    summary = {"sdk": anthropic.__version__, "sync": sync_rows(client), "batch": batch_rows(client)}
    print(json.dumps(summary))
