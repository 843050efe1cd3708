"""``Idempotency-Key`` on create (extension): a replay returns the first batch, never a second."""

from __future__ import annotations

import asyncio

import httpx
from harness import message_request
from inprocess import InProcessServer

BATCHES = "/v1/messages/batches"


async def client(server: InProcessServer, workspace: str) -> httpx.AsyncClient:
    return server.client(await server.add_key(workspace))


async def test_replayed_create_returns_the_same_batch(server: InProcessServer) -> None:
    async with await client(server, "idem-replay") as http:
        body = {"requests": [message_request("a"), message_request("b")]}
        first = await http.post(
            BATCHES, json=body, headers={"idempotency-key": "nightly-2026-11-25"}
        )
        again = await http.post(
            BATCHES, json=body, headers={"idempotency-key": "nightly-2026-11-25"}
        )
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        other = await http.post(
            BATCHES, json=body, headers={"idempotency-key": "nightly-2026-11-26"}
        )
        assert other.json()["id"] != first.json()["id"]
        assert len((await http.get(BATCHES)).json()["data"]) == 2


async def test_same_key_with_another_body_is_refused(server: InProcessServer) -> None:
    async with await client(server, "idem-conflict") as http:
        key = {"idempotency-key": "k1"}
        await http.post(BATCHES, json={"requests": [message_request("a")]}, headers=key)
        response = await http.post(BATCHES, json={"requests": [message_request("z")]}, headers=key)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("Idempotency-Key:")


async def test_concurrent_replays_make_one_batch(server: InProcessServer) -> None:
    async with await client(server, "idem-race") as http:
        body = {"requests": [message_request(f"r{n}") for n in range(200)]}

        async def create() -> str:
            response = await http.post(BATCHES, json=body, headers={"idempotency-key": "race"})
            assert response.status_code == 200, response.text
            batch_id: str = response.json()["id"]
            return batch_id

        ids = set(await asyncio.gather(*(create() for _ in range(8))))
        assert len(ids) == 1
        assert len((await http.get(BATCHES)).json()["data"]) == 1


async def test_keys_are_scoped_to_the_workspace(server: InProcessServer) -> None:
    body = {"requests": [message_request("a")]}
    async with await client(server, "idem-ws1") as one, await client(server, "idem-ws2") as two:
        first = (await one.post(BATCHES, json=body, headers={"idempotency-key": "shared"})).json()
        second = (await two.post(BATCHES, json=body, headers={"idempotency-key": "shared"})).json()
        assert first["id"] != second["id"]
