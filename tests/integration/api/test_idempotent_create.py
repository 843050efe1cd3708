"""``Idempotency-Key`` on create (extension): a replay returns the first batch, never a second."""

from __future__ import annotations

import concurrent.futures

import httpx
from harness import ServerProcess, add_key, message_request

BATCHES = "/v1/messages/batches"


def client(server: ServerProcess, workspace: str) -> httpx.Client:
    key = add_key(server.db_url, workspace)
    return httpx.Client(base_url=server.base_url, headers={"x-api-key": key}, timeout=60)


def test_replayed_create_returns_the_same_batch(sim_server: ServerProcess) -> None:
    with client(sim_server, "idem-replay") as http:
        body = {"requests": [message_request("a"), message_request("b")]}
        first = http.post(BATCHES, json=body, headers={"idempotency-key": "nightly-2026-11-25"})
        again = http.post(BATCHES, json=body, headers={"idempotency-key": "nightly-2026-11-25"})
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        other = http.post(BATCHES, json=body, headers={"idempotency-key": "nightly-2026-11-26"})
        assert other.json()["id"] != first.json()["id"]
        assert len(http.get(BATCHES).json()["data"]) == 2


def test_same_key_with_another_body_is_refused(sim_server: ServerProcess) -> None:
    with client(sim_server, "idem-conflict") as http:
        key = {"idempotency-key": "k1"}
        http.post(BATCHES, json={"requests": [message_request("a")]}, headers=key)
        response = http.post(BATCHES, json={"requests": [message_request("z")]}, headers=key)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("Idempotency-Key:")


def test_concurrent_replays_make_one_batch(sim_server: ServerProcess) -> None:
    with client(sim_server, "idem-race") as http:
        body = {"requests": [message_request(f"r{n}") for n in range(200)]}

        def create(_: int) -> str:
            response = http.post(BATCHES, json=body, headers={"idempotency-key": "race"})
            assert response.status_code == 200, response.text
            batch_id: str = response.json()["id"]
            return batch_id

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(create, range(8)))
        assert len(ids) == 1
        assert len(http.get(BATCHES).json()["data"]) == 1


def test_keys_are_scoped_to_the_workspace(sim_server: ServerProcess) -> None:
    body = {"requests": [message_request("a")]}
    with client(sim_server, "idem-ws1") as one, client(sim_server, "idem-ws2") as two:
        first = one.post(BATCHES, json=body, headers={"idempotency-key": "shared"}).json()
        second = two.post(BATCHES, json=body, headers={"idempotency-key": "shared"}).json()
        assert first["id"] != second["id"]
