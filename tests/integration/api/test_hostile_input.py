"""Bytes no client should send still get a 400, never a 500, and never stop the worker."""

from __future__ import annotations

import httpx
import pytest
from harness import message_request
from inprocess import InProcessServer

GOOD_PARAMS = b'{"model":"sim","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
DEEP = (
    b'{"model":"sim","max_tokens":5,"messages":[],"container":' + b"[" * 5000 + b"]" * 5000 + b"}"
)

#: An unhandled error would be a 500 and log a traceback: none in any test here.
pytestmark = pytest.mark.usefixtures("no_errors_logged")


CREATE_BODIES = [
    (b'{"requests":[{"custom_id":"a\xff","params":{}}]}', "not valid UTF-8"),
    (
        b'{"requests":[{"custom_id":"a","params":{"model":"sim","x":"\xff"}}]}',
        "requests.0.params: not valid UTF-8",
    ),
    (b'{"requests":[{"custom_id":"a","params":' + DEEP + b"}]}", "nested too deeply"),
]
SYNC_BODIES = [GOOD_PARAMS.replace(b"hi", b"h\xffi"), DEEP]


@pytest.mark.parametrize(("body", "message"), CREATE_BODIES)
async def test_create_rejects_unreadable_bytes(
    body: bytes, message: str, client: httpx.AsyncClient
) -> None:
    response = await client.post("/v1/messages/batches", content=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize("body", SYNC_BODIES, ids=["utf8", "deep"])
async def test_sync_messages_rejects_unreadable_bytes(
    body: bytes, client: httpx.AsyncClient
) -> None:
    response = await client.post("/v1/messages", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_worker_survives_and_later_batches_run(
    server: InProcessServer, client: httpx.AsyncClient
) -> None:
    """Every body above sent to one server first; its worker still runs the next batch."""
    for body, _ in CREATE_BODIES:
        assert (await client.post("/v1/messages/batches", content=body)).status_code == 400
    for body in SYNC_BODIES:
        assert (await client.post("/v1/messages", content=body)).status_code == 400
    async with await server.api("after-hostile") as api:
        batch = await api.create([message_request("fine")])
        assert (await api.wait_ended(batch["id"], timeout=30))["request_counts"]["succeeded"] == 1
