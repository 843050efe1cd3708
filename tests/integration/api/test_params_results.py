"""Per-request ``params`` problems become ``errored`` results, and the results file's shape.

Spec 5.4: the envelope is checked at create, but each request's ``params`` is validated
asynchronously; a bad request ends as an ``errored`` line carrying the full error envelope
with Anthropic's ``<path>: <reason>`` message, while its neighbours succeed. One mixed batch
is run once per module on the app in-process; the tests then check every line of its results
(docs/protocol.md §2.6, §4.1, §4.2) and the ``MessageBatch`` object before and after the
end (§3)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from harness import sim_config
from inprocess import InProcessServer, running_app

BATCHES = "/v1/messages/batches"
USER = [{"role": "user", "content": "Say something."}]
BATCH_KEYS = {
    "id",
    "type",
    "processing_status",
    "request_counts",
    "created_at",
    "expires_at",
    "ended_at",
    "cancel_initiated_at",
    "archived_at",
    "results_url",
}
COUNT_KEYS = {"processing", "succeeded", "errored", "canceled", "expired"}
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def params(**fields: Any) -> dict[str, Any]:
    """Valid ``sim`` params with ``fields`` changed; a value of ``...`` removes the key."""
    value: dict[str, Any] = {"model": "sim", "max_tokens": 8, "messages": USER}
    value.update(fields)
    return {k: v for k, v in value.items() if v is not ...}


#: custom_id → (params, result type, inner error type, exact error message).
CASES: dict[str, tuple[dict[str, Any], str, str | None, str | None]] = {
    "ok-plain": (params(), "succeeded", None, None),
    "ok-stream-false": (params(stream=False, temperature=1.0), "succeeded", None, None),
    "ok-blocks": (
        params(
            system="Be terse.",
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
                {"role": "assistant", "content": "Hi"},
                {"role": "user", "content": "Again"},
            ],
        ),
        "succeeded",
        None,
        None,
    ),
    "missing-max-tokens": (
        params(max_tokens=...),
        "errored",
        "invalid_request_error",
        "max_tokens: Field required",
    ),
    "max-tokens-zero": (
        params(max_tokens=0),
        "errored",
        "invalid_request_error",
        "max_tokens: must be at least 1 for requests in a Message Batch "
        "(cache pre-warming with max_tokens: 0 is not supported in batches)",
    ),
    "max-tokens-string": (
        params(max_tokens="8"),
        "errored",
        "invalid_request_error",
        "max_tokens: Expected `int`, got `str`",
    ),
    "max-tokens-over-model-max": (
        params(max_tokens=10**6),
        "errored",
        "invalid_request_error",
        "max_tokens: 1000000 > 8192, which is the maximum allowed number of output tokens for sim",
    ),
    "stream-true": (
        params(stream=True),
        "errored",
        "invalid_request_error",
        "stream: streaming is not supported for requests in a Message Batch",
    ),
    "speed-fast": (
        params(speed="fast"),
        "errored",
        "invalid_request_error",
        "speed: fast mode is not supported for requests in a Message Batch",
    ),
    "ok-role-system": (
        params(messages=[{"role": "system", "content": "Be terse."}, *USER]),
        "succeeded",
        None,
        None,
    ),
    "role-robot": (
        params(messages=[{"role": "robot", "content": "x"}, *USER]),
        "errored",
        "invalid_request_error",
        "messages.0.role: Invalid value 'robot'",
    ),
    "messages-empty": (
        params(messages=[]),
        "errored",
        "invalid_request_error",
        "messages: List should have at least 1 item",
    ),
    "content-empty": (
        params(
            messages=[
                *USER,
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": ""},
            ]
        ),
        "errored",
        "invalid_request_error",
        "messages.2: all messages must have non-empty content except for the "
        "optional final assistant message",
    ),
    "text-block-empty": (
        params(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        "errored",
        "invalid_request_error",
        "messages: text content blocks must be non-empty",
    ),
    "unknown-key": (
        params(output_format={"type": "json"}),
        "errored",
        "invalid_request_error",
        "output_format: Extra inputs are not permitted",
    ),
    "temperature-high": (
        params(temperature=1.5),
        "errored",
        "invalid_request_error",
        "temperature: Expected `float` <= 1.0",
    ),
    "unknown-model": (
        params(model="claude-nonexistent-9"),
        "errored",
        "not_found_error",
        "model: claude-nonexistent-9",
    ),
    "tool-bad-name": (
        params(tools=[{"name": "get weather", "input_schema": {"type": "object"}}]),
        "errored",
        "invalid_request_error",
        "tools.0.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'",
    ),
    "tool-choice-names-no-tool": (
        params(
            tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
            tool_choice={"type": "tool", "name": "missing"},
        ),
        "errored",
        "invalid_request_error",
        "tool_choice.name: 'missing' is not the name of a tool in tools",
    ),
    # Valid requests the simulated engine would not honour: refused by name.
    "output-format-pattern-unsupported": (
        params(
            output_config={
                "format": {
                    "type": "json_schema",
                    "schema": {
                        "type": "object",
                        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
                    },
                }
            }
        ),
        "errored",
        "invalid_request_error",
        "output_config.format.schema.properties.code.pattern: the JSON Schema keyword "
        "'pattern' is not supported by sim (it cannot produce a value that honours it)",
    ),
    "adaptive-thinking-unsupported": (
        params(thinking={"type": "adaptive"}),
        "errored",
        "invalid_request_error",
        "thinking: 'adaptive' thinking is not supported by sim",
    ),
}


#: One app and one mixed batch for the whole module: every test runs in the module's loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


class Run:
    """The mixed batch as created, as ended, and its downloaded results."""

    def __init__(self, server: InProcessServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client

    async def start(self) -> Run:
        response = await self.client.post(
            BATCHES,
            json={
                "requests": [{"custom_id": cid, "params": case[0]} for cid, case in CASES.items()]
            },
        )
        assert response.status_code == 200, response.text
        self.created: dict[str, Any] = response.json()
        self.ended = await self._wait_ended(self.created["id"])
        self.results = await self.client.get(self.ended["results_url"])
        assert self.results.status_code == 200, self.results.text
        self.lines = self.results.text.split("\n")
        assert self.lines[-1] == ""  # exactly one trailing newline ...
        self.lines.pop()
        self.records = [json.loads(line) for line in self.lines]
        self.by_id = {record["custom_id"]: record for record in self.records}
        return self

    async def _wait_ended(self, batch_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            batch: dict[str, Any] = (await self.client.get(f"{BATCHES}/{batch_id}")).json()
            if batch["processing_status"] == "ended":
                return batch
            assert time.monotonic() < deadline, batch
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    workdir: Path = tmp_path_factory.mktemp("params-results")
    # A configured output cap, enforced for the model whatever its engine can do.
    async with running_app(workdir, sim_config(sim_max_output_tokens=8192)) as server:
        key = await server.add_key("ws-params-results")
        async with server.client(key, timeout=30) as client:
            yield await Run(server, client).start()


# ------------------------------------------------------------------------------ per request


@pytest.mark.parametrize("custom_id", list(CASES))
async def test_each_request_gets_the_expected_result(run: Run, custom_id: str) -> None:
    _, result_type, error_type, message = CASES[custom_id]
    result = run.by_id[custom_id]["result"]
    assert result["type"] == result_type, result
    if result_type == "errored":
        assert set(result) == {"type", "error"}
        envelope = result["error"]
        assert set(envelope) == {"type", "error", "request_id"}
        assert envelope["type"] == "error"
        assert envelope["request_id"].startswith("req_")
        assert envelope["error"] == {"type": error_type, "message": message}
    else:
        assert set(result) == {"type", "message"}


async def test_errored_lines_have_distinct_request_ids(run: Run) -> None:
    request_ids = [
        r["result"]["error"]["request_id"] for r in run.records if r["result"]["type"] == "errored"
    ]
    assert len(set(request_ids)) == len(request_ids)


# ------------------------------------------------------------------------------ the file


async def test_results_file_framing(run: Run) -> None:
    """JSONL the SDK decoders accept: ``application/x-jsonl``, compact lines, no blank line,
    one line per custom_id."""
    assert run.results.headers["content-type"] == "application/x-jsonl"
    assert run.results.headers["content-disposition"] == (
        f"attachment; filename*=utf-8''{run.created['id']}_results.jsonl"
    )
    assert run.results.headers["request-id"].startswith("req_")
    assert "\r" not in run.results.text
    assert all(run.lines), "blank line in results"
    for line, record in zip(run.lines, run.records, strict=True):
        assert line == json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    custom_ids = [record["custom_id"] for record in run.records]
    assert sorted(custom_ids) == sorted(CASES)
    for record in run.records:
        assert set(record) == {"custom_id", "result"}


async def test_results_are_the_same_on_every_download(run: Run) -> None:
    again = await run.client.get(f"{BATCHES}/{run.created['id']}/results")
    assert again.status_code == 200
    assert again.content == run.results.content


async def test_request_counts_are_exact(run: Run) -> None:
    expected = {name: 0 for name in COUNT_KEYS}
    for _, result_type, _, _ in CASES.values():
        expected[result_type] += 1
    counts = run.ended["request_counts"]
    assert counts == expected
    assert sum(counts.values()) == len(CASES) == len(run.lines)


async def test_results_url_is_absolute_and_dialable(run: Run) -> None:
    url = run.ended["results_url"]
    assert url == f"{run.server.base_url}{BATCHES}/{run.created['id']}/results"
    # Dialled as a client would: a fresh client, no base URL, exactly that URL.
    async with httpx.AsyncClient(transport=run.server.transport) as fresh:
        response = await fresh.get(
            url,
            headers={"x-api-key": run.client.headers["x-api-key"], "accept": "application/binary"},
        )
    assert response.status_code == 200
    assert response.content == run.results.content


# ------------------------------------------------------------------------------ Message


async def test_succeeded_line_carries_a_full_message(run: Run) -> None:
    message = run.by_id["ok-plain"]["result"]["message"]
    assert {
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    } <= set(message)
    assert re.fullmatch(r"msg_01[1-9A-HJ-NP-Za-km-z]{22}", message["id"])
    assert (message["type"], message["role"], message["model"]) == ("message", "assistant", "sim")
    assert message["content"] and message["content"][0]["type"] == "text"
    assert isinstance(message["content"][0]["text"], str) and message["content"][0]["text"]
    assert message["stop_reason"] in ("end_turn", "max_tokens", "stop_sequence")
    assert "stop_sequence" in message and message["stop_sequence"] is None
    usage = message["usage"]
    assert usage["service_tier"] == "batch"
    assert isinstance(usage["input_tokens"], int) and usage["input_tokens"] >= 0
    assert 0 < usage["output_tokens"] <= 8


async def test_message_ids_are_unique(run: Run) -> None:
    message_ids = [
        r["result"]["message"]["id"] for r in run.records if r["result"]["type"] == "succeeded"
    ]
    succeeded = [case for case in CASES.values() if case[1] == "succeeded"]
    assert len(message_ids) == len(succeeded) == len(set(message_ids))


# ------------------------------------------------------------------------------ MessageBatch


def parse(stamp: str) -> datetime:
    assert RFC3339_Z.fullmatch(stamp), stamp
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_created_batch_object_shape(run: Run) -> None:
    batch = run.created
    assert set(batch) == BATCH_KEYS
    assert re.fullmatch(r"msgbatch_01[1-9A-HJ-NP-Za-km-z]{22}", batch["id"])
    assert batch["type"] == "message_batch"
    assert batch["processing_status"] == "in_progress"
    assert batch["request_counts"] == {
        "processing": len(CASES),
        "succeeded": 0,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    for unset in ("ended_at", "cancel_initiated_at", "archived_at", "results_url"):
        assert batch[unset] is None
    assert parse(batch["expires_at"]) - parse(batch["created_at"]) == timedelta(hours=24)


async def test_ended_batch_object_shape(run: Run) -> None:
    batch = run.ended
    assert set(batch) == BATCH_KEYS
    assert set(batch["request_counts"]) == COUNT_KEYS
    assert batch["id"] == run.created["id"]
    assert (batch["created_at"], batch["expires_at"]) == (
        run.created["created_at"],
        run.created["expires_at"],
    )
    assert parse(batch["created_at"]) <= parse(batch["ended_at"]) < parse(batch["expires_at"])
    assert batch["cancel_initiated_at"] is None
    assert batch["archived_at"] is None
    assert batch["results_url"].startswith("http://")


async def test_list_shows_the_same_batch_object(run: Run) -> None:
    listed = (await run.client.get(BATCHES)).json()
    assert listed["data"] == [(await run.client.get(f"{BATCHES}/{run.created['id']}")).json()]
    assert (listed["first_id"], listed["last_id"], listed["has_more"]) == (
        run.created["id"],
        run.created["id"],
        False,
    )
