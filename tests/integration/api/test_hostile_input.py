"""Bytes no client should send still get a 400, never a 500, and never stop the worker."""

from __future__ import annotations

import httpx
import pytest
from harness import Api, ServerProcess, add_key, message_request

GOOD_PARAMS = b'{"model":"sim","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
DEEP = (
    b'{"model":"sim","max_tokens":5,"messages":[],"container":' + b"[" * 5000 + b"]" * 5000 + b"}"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"requests":[{"custom_id":"a\xff","params":{}}]}', "not valid UTF-8"),
        (
            b'{"requests":[{"custom_id":"a","params":{"model":"sim","x":"\xff"}}]}',
            "requests.0.params: not valid UTF-8",
        ),
        (b'{"requests":[{"custom_id":"a","params":' + DEEP + b"}]}", "nested too deeply"),
    ],
)
def test_create_rejects_unreadable_bytes(
    body: bytes, message: str, sim_server: ServerProcess, api_key: str
) -> None:
    response = httpx.post(
        f"{sim_server.base_url}/v1/messages/batches", content=body, headers={"x-api-key": api_key}
    )
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body", [GOOD_PARAMS.replace(b"hi", b"h\xffi"), DEEP], ids=["utf8", "deep"]
)
def test_sync_messages_rejects_unreadable_bytes(
    body: bytes, sim_server: ServerProcess, api_key: str
) -> None:
    response = httpx.post(
        f"{sim_server.base_url}/v1/messages", content=body, headers={"x-api-key": api_key}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_worker_survives_and_later_batches_run(sim_server: ServerProcess) -> None:
    api = Api(sim_server.base_url, add_key(sim_server.db_url, "after-hostile"))
    batch = api.create([message_request("fine")])
    assert api.wait_ended(batch["id"], timeout=30)["request_counts"]["succeeded"] == 1
