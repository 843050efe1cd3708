"""The ``anthropic-batch`` engine against a real upstream Message Batches API: a second
``batchyard serve`` (simulated model) on loopback. What the upstream saw is counted in its
own database: every request exactly once, across SIGKILLs of the relaying batchyard.

One test puts a small forwarding proxy in front of that upstream that holds back its answer
to a create (the upstream has made the batch, the relay does not know its id yet), so the
kill lands in the one window an idempotency key exists for.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from harness import (
    Api,
    ServerProcess,
    add_key,
    free_port,
    message_request,
    postgres_database,
    sim_config,
)

PASSTHROUGH = """
[[models]]
name = "{name}"
engine = "anthropic-batch"
base_url = "{base_url}"
api_key = "{key}"
upstream_model = "{upstream_model}"
max_batch_requests = {max_batch_requests}
max_wait_seconds = 0.3
poll_seconds = 0.5
"""


def passthrough(name: str, base_url: str, key: str, upstream_model: str = "sim", **kw: Any) -> str:
    values = {"max_batch_requests": 1000, **kw}
    return PASSTHROUGH.format(
        name=name, base_url=base_url, key=key, upstream_model=upstream_model, **values
    )


def relay_config(models: str) -> str:
    return sim_config(lease_seconds=2) + models


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path, f"sqlite:///{tmp_path / 'upstream.db'}", sim_config(sim_latency_ms=5)
    ).start()
    yield server
    server.stop()


def upstream_db(upstream: ServerProcess) -> sqlite3.Connection:
    return sqlite3.connect(upstream.db_url.removeprefix("sqlite:///"))


def upstream_saw(upstream: ServerProcess) -> tuple[int, int, list[int]]:
    """Requests the upstream stored, distinct (batch, custom_id) pairs among them … and
    distinct ``custom_id``s (ours name the relay's row), and each upstream batch's size."""
    with upstream_db(upstream) as db:
        total, distinct = db.execute(
            "SELECT count(*), count(DISTINCT custom_id) FROM requests"
        ).fetchone()
        sizes = [row[0] for row in db.execute("SELECT total FROM batches ORDER BY seq")]
    return total, distinct, sizes


def relay_submissions(relay: ServerProcess) -> Counter[str]:
    with sqlite3.connect(relay.db_url.removeprefix("sqlite:///")) as db:
        return Counter(dict(db.execute("SELECT state, count(*) FROM submissions GROUP BY state")))


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def assert_all_succeeded(api: Api, batch_id: str, total: int, model: str) -> list[dict[str, Any]]:
    ended = api.wait_ended(batch_id, timeout=180)
    assert ended["request_counts"]["succeeded"] == total, ended
    lines = api.results(batch_id)
    assert len(lines) == total == len({line["custom_id"] for line in lines})
    for line in lines:
        message = line["result"]["message"]
        assert message["model"] == model, "the client's name, not the upstream's"
        assert message["usage"]["service_tier"] == "batch"
    return lines


def test_2500_requests_exactly_once_across_a_sigkill_after_submission(
    upstream: ServerProcess, tmp_path: Path
) -> None:
    up_key = add_key(upstream.db_url, "relay")
    config = relay_config(passthrough("passthrough", upstream.base_url, up_key))
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    first = ServerProcess(tmp_path, url, config).start()
    key = add_key(url, "users")
    api = Api(first.base_url, key)
    total = 2500
    batch = api.create(
        [message_request(f"t{n:05d}", model="passthrough", text=f"t {n}") for n in range(total)]
    )
    beta = api.http.post(
        "/v1/messages/batches",
        json={"requests": [message_request(f"b{n}", model="passthrough") for n in range(10)]},
        headers={"anthropic-beta": "message-batches-2024-09-24"},
    ).json()
    wait_for(lambda: upstream_saw(upstream)[0] >= 1000)
    first.kill()
    # The upstream holds the batch: killed either after its id was stored (``submitted``)
    # or before (``submitting``, to be re-sent under the same Idempotency-Key); on a busy
    # machine either can be caught, and both must end exactly once.
    states = relay_submissions(first)
    assert states["submitted"] + states["submitting"] >= 1, states

    second = ServerProcess(tmp_path, url, config).start()
    try:
        api = Api(second.base_url, key)
        assert_all_succeeded(api, batch["id"], total, "passthrough")
        assert_all_succeeded(api, beta["id"], 10, "passthrough")
    finally:
        second.stop()
    stored, distinct, sizes = upstream_saw(upstream)
    assert stored == distinct == total + 10, "each request sent upstream exactly once"
    assert max(sizes) <= 1000 and sum(sizes) == total + 10
    with upstream_db(upstream) as db:
        headers = [row[0] for row in db.execute("SELECT headers FROM batches WHERE total = 10")]
    assert headers == [b'[["anthropic-beta","message-batches-2024-09-24"]]'], (
        "only same-header requests share an upstream batch, and its headers go with it"
    )
    assert relay_submissions(second) == Counter({"ended": len(sizes)})


class _HoldingProxy:
    """Forwards to the upstream; while ``holding``, answers a batch create only after the
    upstream has made the batch and ``release`` is set (an upstream slow to answer)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.holding = True
        self.release = threading.Event()
        self.held = threading.Event()
        self.create_keys: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    method, proxy.target + self.path, content=body, headers=headers, timeout=60
                )
                if method == "POST" and self.path == "/v1/messages/batches":
                    proxy.create_keys.append(self.headers.get("idempotency-key", ""))
                    if proxy.holding:
                        proxy.held.set()
                        proxy.release.wait(60)
                        return  # the caller is gone by now: answer nothing
                self.send_response(answer.status_code)
                for name in ("content-type", "retry-after"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()


def test_sigkill_while_the_upstream_is_answering_create_still_runs_once(
    upstream: ServerProcess, tmp_path: Path
) -> None:
    proxy = _HoldingProxy(upstream.base_url)
    try:
        up_key = add_key(upstream.db_url, "relay")
        config = relay_config(passthrough("passthrough", proxy.base_url, up_key))
        url = f"sqlite:///{tmp_path / 'relay.db'}"
        first = ServerProcess(tmp_path, url, config).start()
        key = add_key(url, "users")
        total = 300
        batch = Api(first.base_url, key).create(
            [message_request(f"t{n:04d}", model="passthrough") for n in range(total)]
        )
        assert proxy.held.wait(30), "the create reached the upstream"
        # Stored before the upstream answered: the relay knows what it sent, not its id.
        assert relay_submissions(first) == Counter({"submitting": 1})
        assert upstream_saw(upstream)[0] == total
        first.kill()
        proxy.holding = False
        proxy.release.set()

        second = ServerProcess(tmp_path, url, config).start()
        try:
            assert_all_succeeded(Api(second.base_url, key), batch["id"], total, "passthrough")
        finally:
            second.stop()
    finally:
        proxy.stop()
    assert len(proxy.create_keys) == 2 and len(set(proxy.create_keys)) == 1, (
        "re-sent once after the restart, with the same Idempotency-Key"
    )
    assert upstream_saw(upstream) == (total, total, [total]), "and the upstream ran it once"


def test_cancel_and_refusals_keep_their_types(upstream: ServerProcess, tmp_path: Path) -> None:
    up_key = add_key(upstream.db_url, "relay")
    config = relay_config(
        passthrough("slow", upstream.base_url, up_key, upstream_model="sim-slow")
        + passthrough("refused", upstream.base_url, "sk-wrong")
        + passthrough("missing", upstream.base_url, up_key, upstream_model="no-such-model")
    )
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    relay = ServerProcess(tmp_path, url, config).start()
    try:
        api = Api(relay.base_url, add_key(url, "users"))
        slow = api.create([message_request(f"s{n:02d}", model="slow") for n in range(40)])
        refused = api.create([message_request("r0", model="refused")])
        missing = api.create([message_request("m0", model="missing")])
        wait_for(lambda: relay_submissions(relay)["submitted"] >= 1)
        api.http.post(f"/v1/messages/batches/{slow['id']}/cancel")
        canceled = api.wait_ended(slow["id"], timeout=60)["request_counts"]
        assert canceled["canceled"] > 0 and canceled["succeeded"] + canceled["canceled"] == 40
        with upstream_db(upstream) as db:
            up_status, up_canceled = db.execute(
                "SELECT status, canceled FROM batches WHERE total = 40"
            ).fetchone()
        assert (up_status, up_canceled) == ("ended", canceled["canceled"])

        api.wait_ended(refused["id"], timeout=30)
        [line] = api.results(refused["id"])
        # The relay's own key refused upstream: its misconfiguration, named, not the client's.
        refusal = line["result"]["error"]["error"]
        assert refusal["type"] == "api_error" and "HTTP 401" in refusal["message"], refusal
        api.wait_ended(missing["id"], timeout=30)
        [line] = api.results(missing["id"])
        assert line["result"]["error"]["error"] == {
            "type": "not_found_error",
            "message": "model: no-such-model",
        }
    finally:
        relay.stop()


def test_workers_sharing_postgres_send_each_request_upstream_once(
    upstream: ServerProcess, tmp_path: Path
) -> None:
    """Three workers gather from one queue at once (one killed mid-way): every request goes
    into exactly one upstream batch."""
    up_key = add_key(upstream.db_url, "relay")
    config = relay_config(
        passthrough("passthrough", upstream.base_url, up_key, max_batch_requests=100)
    )
    with postgres_database() as url:
        api_server = ServerProcess(tmp_path, url, config, extra_args=("--no-worker",)).start()
        workers = [ServerProcess(tmp_path, url, config, command="worker") for _ in range(3)]
        try:
            for worker in workers:
                worker.start()
            api = Api(api_server.base_url, add_key(url, "users"))
            batches = [
                api.create([message_request(f"t{n:04d}", model="passthrough") for n in range(400)])
                for _ in range(3)
            ]
            wait_for(lambda: upstream_saw(upstream)[0] >= 300)
            workers[0].kill()
            for batch in batches:
                assert_all_succeeded(api, batch["id"], 400, "passthrough")
        finally:
            for process in (*workers, api_server):
                process.stop()
    stored, distinct, sizes = upstream_saw(upstream)
    assert stored == distinct == 1200 and max(sizes) <= 100


def test_an_openai_batch_goes_upstream_as_messages_params(
    upstream: ServerProcess, tmp_path: Path
) -> None:
    """An OpenAI batch's lines for a passthrough model are translated from Chat Completions
    before they are sent, as for any other engine; one that cannot be is refused locally
    (a 400 in the error file) and never reaches the upstream."""
    config = relay_config(passthrough("relayed", upstream.base_url, add_key(upstream.db_url, "r")))
    url = f"sqlite:///{tmp_path / 'relay.db'}"
    relay = ServerProcess(tmp_path, url, config).start()
    try:
        client = openai.OpenAI(base_url=f"{relay.base_url}/v1", api_key=add_key(url, "users"))
        lines = [
            {
                "custom_id": custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "relayed",
                    "max_completion_tokens": 16,
                    "stop": "\n\n",
                    "messages": [
                        {"role": "developer", "content": "Be brief."},
                        {"role": "user", "content": f"About {custom_id}"},
                    ],
                    **extra,
                },
            }
            for custom_id, extra in [("good-1", {}), ("good-2", {}), ("two", {"n": 2})]
        ]
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        uploaded = client.files.create(file=("in.jsonl", content), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        deadline = time.monotonic() + 60
        while (batch := client.batches.retrieve(batch.id)).status == "in_progress":
            assert time.monotonic() < deadline, batch
            time.sleep(0.2)
        assert batch.status == "completed" and batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
        output = client.files.content(batch.output_file_id or "").text.splitlines()
        assert sorted(json.loads(line)["custom_id"] for line in output) == ["good-1", "good-2"]
        for line in output:
            assert json.loads(line)["response"]["body"]["object"] == "chat.completion"
        [error] = client.files.content(batch.error_file_id or "").text.splitlines()
        assert json.loads(error)["response"]["body"]["error"]["param"] == "n"
        with upstream_db(upstream) as db:
            sent = [json.loads(row[0]) for row in db.execute("SELECT params FROM requests")]
        assert len(sent) == 2
        for params in sent:
            assert params["system"] == [{"text": "Be brief."}]
            assert params["max_tokens"] == 16 and params["stop_sequences"] == ["\n\n"]
    finally:
        relay.stop()
