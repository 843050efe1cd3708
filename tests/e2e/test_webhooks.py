"""Webhooks (extension): a signed ``message_batch.ended`` POST, retried until acknowledged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest
from harness import Api, ServerProcess, add_key, cli, message_request, sim_config
from openai.types.webhooks import BatchCompletedWebhookEvent


class Receiver:
    """A real HTTP endpoint on loopback that records deliveries and fails the first N."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        self.calls: list[tuple[int, dict[str, str], bytes]] = []
        #: ``time.time()`` at each call's arrival.
        self.received_at: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                status = 500 if len(receiver.calls) < receiver.fail_first else 204
                receiver.received_at.append(time.time())
                receiver.calls.append((status, dict(self.headers.items()), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/batches"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for_success(self, timeout: float = 30) -> tuple[dict[str, str], bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for status, headers, body in self.calls:
                if status == 204:
                    return headers, body
            time.sleep(0.05)
        raise AssertionError(f"no successful delivery; calls: {self.calls}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = sim_config(webhook_retry_base_seconds=0.2, public_url="http://batches.test")
    process = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", config).start()
    yield process
    process.stop()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return headers["webhook-signature"] == f"v1,{expected}"


def test_ended_event_is_signed_and_retried_until_acknowledged(server: ServerProcess) -> None:
    receiver = Receiver(fail_first=2)
    output = cli(
        "webhooks", "add", "--workspace", "hooks", "--url", receiver.url, "--db", server.db_url
    )
    secret = output.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    api = Api(server.base_url, add_key(server.db_url, "hooks"))
    batch = api.create([message_request(f"r{n}") for n in range(3)])

    headers, body = receiver.wait_for_success()
    assert verify(secret, headers, body)
    event = json.loads(body)
    assert event["type"] == "message_batch.ended"
    data = event["data"]
    assert data["id"] == batch["id"] and data["processing_status"] == "ended"
    assert data["request_counts"]["succeeded"] == 3
    assert data["results_url"] == f"http://batches.test/v1/messages/batches/{batch['id']}/results"
    # Two failed attempts, then one success, all for the same event id.
    assert [status for status, _, _ in receiver.calls] == [500, 500, 204]
    assert len({h["webhook-id"] for _, h, _ in receiver.calls}) == 1
    time.sleep(1)
    assert len(receiver.calls) == 3, "an acknowledged event is not sent again"


def test_other_workspaces_are_not_notified_and_hooks_can_be_removed(server: ServerProcess) -> None:
    receiver = Receiver(fail_first=0)
    cli("webhooks", "add", "--workspace", "watched", "--url", receiver.url, "--db", server.db_url)
    listed = cli("webhooks", "list", "--workspace", "watched", "--db", server.db_url)
    webhook_id = listed.split()[0]
    assert receiver.url in listed

    other = Api(server.base_url, add_key(server.db_url, "unwatched"))
    other.wait_ended(other.create([message_request("x")])["id"])
    time.sleep(1)
    assert receiver.calls == []

    cli("webhooks", "remove", "--workspace", "watched", "--id", webhook_id, "--db", server.db_url)
    assert cli("webhooks", "list", "--workspace", "watched", "--db", server.db_url) == ""
    watched = Api(server.base_url, add_key(server.db_url, "watched"))
    watched.wait_ended(watched.create([message_request("y")])["id"])
    time.sleep(1)
    assert receiver.calls == []


def test_a_hanging_receiver_does_not_hold_up_other_webhooks(tmp_path: Path) -> None:
    """One receiver trickling its answer a byte a second times out; the others still get
    their events promptly."""

    class Trickle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-length", "1000")
            self.end_headers()
            for _ in range(60):
                time.sleep(1)
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return

        def log_message(self, *args: object) -> None:
            pass

    slow = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    fast = Receiver(fail_first=0)
    config = sim_config(webhook_timeout_seconds=1, webhook_retry_base_seconds=0.2)
    server = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", config).start()
    try:
        hook_url = f"http://127.0.0.1:{slow.server_address[1]}/hang"
        cli("webhooks", "add", "--workspace", "w", "--url", hook_url, "--db", server.db_url)
        cli("webhooks", "add", "--workspace", "w", "--url", fast.url, "--db", server.db_url)
        api = Api(server.base_url, add_key(server.db_url, "w"))
        for n in range(3):
            api.wait_ended(api.create([message_request(f"r{n}")])["id"])
            time.sleep(0.5)
        deadline = time.monotonic() + 10
        while len(fast.calls) < 3:
            assert time.monotonic() < deadline, fast.calls
            time.sleep(0.1)
    finally:
        server.stop()
        slow.shutdown()


def test_an_openai_batch_sends_openais_event_which_its_sdk_unwraps(server: ServerProcess) -> None:
    """A batch made through ``/v1/batches`` ends with OpenAI's webhook event
    (``batch.completed``), verified and parsed by the official SDK's ``webhooks.unwrap``."""
    receiver = Receiver(fail_first=0)
    output = cli(
        "webhooks", "add", "--workspace", "oa", "--url", receiver.url, "--db", server.db_url
    )
    secret = output.strip().splitlines()[-1]
    client = openai.OpenAI(
        base_url=f"{server.base_url}/v1",
        api_key=add_key(server.db_url, "oa"),
        webhook_secret=secret,
    )
    line = {
        "custom_id": "only",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "sim", "messages": [{"role": "user", "content": "hi"}]},
    }
    uploaded = client.files.create(file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    headers, body = receiver.wait_for_success()
    event = client.webhooks.unwrap(body.decode(), headers)
    assert isinstance(event, BatchCompletedWebhookEvent)
    assert event.data.id == batch.id and event.type == "batch.completed"
