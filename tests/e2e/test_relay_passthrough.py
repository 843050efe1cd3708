"""The ``anthropic`` engine forwards without loss, checked on the wire.

A real ``batchyard serve`` relays to a recording stand-in for Anthropic's API (see
``recording_upstream.py``): no real Anthropic upstream is reachable here, and the point is
what the relay puts on the wire, byte for byte, so the upstream must record it. The clients
are raw HTTP (to send exactly chosen bytes) and the official Python SDKs, latest and 0.75.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from harness import OLD_PYTHON_SDK, Api, ServerProcess, add_key, sim_config
from recording_upstream import MODEL_INFO, TOOLS_ANSWER, RecordingUpstream
from wire_rows import ROWS, call_args

RELAY_KEY = "sk-relay-own-key"
USER = [{"role": "user", "content": "hi"}]
MAX_ATTEMPTS = 2


@pytest.fixture(scope="module")
def upstream() -> Iterator[RecordingUpstream]:
    server = RecordingUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def relay(
    upstream: RecordingUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("relay")
    relay_models = "".join(
        f"""
[[models]]
name = "relay-{name}"
engine = "anthropic"
base_url = "{upstream.base_url}"
api_key = "{RELAY_KEY}"
upstream_model = "up-{name}"
timeout_seconds = {1 if name == "trickle" else 600}
"""
        for name in (
            "tools",
            "garbage",
            "truncated",
            "overloaded",
            "error200",
            "unauthorized",
            "trickle",
        )
    )
    config = sim_config(max_attempts=MAX_ATTEMPTS) + relay_models
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'relay.sqlite'}", config).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def key(relay: ServerProcess) -> str:
    return add_key(relay.db_url, "relay-users")


def client_body(marker: str) -> dict[str, Any]:
    """A body with what our own types do not know: image ``transformations``, ``toolset_name``
    on tool_use / tool_result, a toolset tool without a name, ``output_format``."""
    return {
        "model": "relay-tools",
        "max_tokens": 256,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": marker},
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/cat.png"},
                        "transformations": [{"type": "crop", "box": [0, 0, 64, 64]}],
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_01",
                        "name": "screenshot",
                        "input": {},
                        "toolset_name": "computer",
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": "done",
                        "toolset_name": "computer",
                    }
                ],
            },
        ],
        "tools": [{"type": "computer_toolset_20260801", "display_width_px": 1024}],
        "output_format": {"type": "json_schema", "schema": {"type": "object"}},
        "temperature": 0.25,
    }


def without_model(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "model"}


def relay_http(relay: ServerProcess, key: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=relay.base_url,
        timeout=60,
        headers={"x-api-key": key, "anthropic-version": "2023-06-01", **headers},
    )


def expected_answer(model: str) -> dict[str, Any]:
    return {**TOOLS_ANSWER, "model": model}


def test_a_request_reaches_the_upstream_as_sent_but_for_model(
    upstream: RecordingUpstream, relay: ServerProcess, key: str
) -> None:
    body = client_body("wire-check")
    with relay_http(
        relay,
        key,
        **{
            "anthropic-beta": "structured-outputs-2025-11-13",
            "anthropic-user-profile-id": "prof_01",
            "anthropic-version": "2099-01-01",
        },
    ) as http:
        response = http.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    # The answer: the upstream's, unknown blocks and fields included, named as asked.
    assert response.json() == expected_answer("relay-tools")
    [received] = upstream.calls("/v1/messages", "wire-check")
    assert received.json["model"] == "up-tools"
    assert without_model(received.json) == without_model(body)
    assert list(received.json) == list(body), "key order kept"
    headers = received.headers
    assert headers["anthropic-beta"] == "structured-outputs-2025-11-13"
    assert headers["anthropic-user-profile-id"] == "prof_01"
    assert headers["anthropic-version"] == "2023-06-01", "the relay's configured version"
    assert headers["x-api-key"] == RELAY_KEY, "the relay's own key, never the client's"
    assert key not in json.dumps(headers) and "authorization" not in headers


def test_the_sdk_gets_the_upstreams_blocks(relay: ServerProcess, key: str) -> None:
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url)
    message = client.messages.create(
        model="relay-tools", max_tokens=64, messages=[{"role": "user", "content": "sdk-latest"}]
    )
    assert message.model == "relay-tools"
    assert [block.type for block in message.content][:3] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    assert message.container is not None and message.container.id == "container_01"
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1
    assert message.content[3].type == "hologram_2027"  # type: ignore[comparison-overlap]
    assert (message.model_extra or {})["future_field"] == TOOLS_ANSWER["future_field"]


OLD_SDK_SCRIPT = """
import json, sys, anthropic
client = anthropic.Anthropic(api_key=sys.argv[2], base_url=sys.argv[1])
message = client.messages.create(
    model="relay-tools", max_tokens=64, messages=[{"role": "user", "content": "sdk-old"}]
)
container = message.container  # not a declared field of 0.75's Message: kept as a dict
print(json.dumps({
    "version": anthropic.__version__,
    "types": [block.type for block in message.content],
    "container": container["id"] if isinstance(container, dict) else container.id,
    "web_search_requests": message.usage.server_tool_use.web_search_requests,
}))
"""


def test_the_old_sdk_gets_the_upstreams_blocks(relay: ServerProcess, key: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(OLD_PYTHON_SDK)}
    completed = subprocess.run(
        [sys.executable, "-c", OLD_SDK_SCRIPT, relay.base_url, key],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["version"] == "0.75.0"
    assert summary["types"][:3] == ["server_tool_use", "web_search_tool_result", "text"]
    assert summary["container"] == "container_01" and summary["web_search_requests"] == 1


def test_a_batch_relays_with_the_create_calls_headers(
    upstream: RecordingUpstream, relay: ServerProcess, key: str
) -> None:
    params = {**client_body("batch-wire-check"), "stream": False}
    api = Api(relay.base_url, key)
    api.http.headers["anthropic-beta"] = "structured-outputs-2025-11-13"
    batch = api.create([{"custom_id": "tools", "params": params}])
    ended = api.wait_ended(batch["id"], timeout=60)
    assert ended["request_counts"]["succeeded"] == 1, ended
    [received] = upstream.calls("/v1/messages", "batch-wire-check")
    assert received.headers["anthropic-beta"] == "structured-outputs-2025-11-13"
    assert received.headers["x-api-key"] == RELAY_KEY
    sent = without_model(params)
    del sent["stream"]  # a batch request is never streamed upstream
    assert without_model(received.json) == sent
    [line] = api.results(batch["id"])
    message = line["result"]["message"]
    expected = expected_answer("relay-tools")
    expected["usage"] = {**expected["usage"], "service_tier": "batch"}
    assert message == expected
    # The SDK reads the same line with the unknown blocks in it.
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url)
    [result] = list(client.messages.batches.results(batch["id"]))
    assert result.result.type == "succeeded"
    assert result.result.message.content[0].type == "server_tool_use"
    assert result.result.message.usage.service_tier == "batch"


@pytest.mark.parametrize("model", ["relay-garbage", "relay-truncated"])
def test_an_unreadable_answer_is_not_retried_by_the_sdk(
    upstream: RecordingUpstream, relay: ServerProcess, key: str, model: str
) -> None:
    marker = f"sync-unreadable-{model}"
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url)  # max_retries: 2
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(
            model=model, max_tokens=8, messages=[{"role": "user", "content": marker}]
        )
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert len(upstream.calls("/v1/messages", marker)) == 1, "one client call, one upstream call"


def test_an_unreadable_answer_in_a_batch_is_retried_then_errored(
    upstream: RecordingUpstream, relay: ServerProcess, key: str
) -> None:
    api = Api(relay.base_url, key)
    params = {
        "model": "relay-garbage",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "batch-unreadable"}],
    }
    batch = api.create([{"custom_id": "garbage", "params": params}])
    ended = api.wait_ended(batch["id"], timeout=60)
    assert ended["request_counts"]["errored"] == 1, ended
    [line] = api.results(batch["id"])
    assert line["result"]["error"]["error"]["type"] == "api_error"
    assert len(upstream.calls("/v1/messages", "batch-unreadable")) == MAX_ATTEMPTS


def test_streaming_through_the_relay_is_live(
    upstream: RecordingUpstream, relay: ServerProcess, key: str
) -> None:
    body = {
        "model": "relay-tools",
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "stream-live"}],
    }
    upstream.release.clear()
    beta = {"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"}
    with (
        relay_http(relay, key, **beta) as http,
        http.stream("POST", "/v1/messages", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = [next(lines), next(lines)]
        # The upstream is still holding the rest: what arrived came through live.
        assert not upstream.release.is_set()
        assert first[0] == "event: message_start"
        start = json.loads(first[1].removeprefix("data: "))
        assert start["message"]["model"] == "relay-tools"
        upstream.release.set()
        rest = "\n".join(lines)
    assert "event: message_stop" in rest and '"text": "Hi"' in rest
    [received] = upstream.calls("/v1/messages", "stream-live")
    assert received.json == {**body, "model": "up-tools"}
    assert received.headers["anthropic-beta"] == "fine-grained-tool-streaming-2025-05-14"
    # The SDK builds the final message from the relayed events.
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url)
    with client.messages.stream(
        model="relay-tools", max_tokens=16, messages=[{"role": "user", "content": "stream-sdk"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.model == "relay-tools" and final.content[0].type == "text"


def test_a_stream_refused_upstream_is_an_error_response(relay: ServerProcess, key: str) -> None:
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model="relay-overloaded",
            max_tokens=8,
            stream=True,
            messages=[{"role": "user", "content": "stream-refused"}],
        )
    assert caught.value.status_code == 529 and caught.value.body["error"] == {  # type: ignore[index]
        "type": "overloaded_error",
        "message": "busy",
    }


def test_count_tokens_is_the_upstreams(
    upstream: RecordingUpstream, relay: ServerProcess, key: str
) -> None:
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url, max_retries=0)
    counted = client.messages.count_tokens(
        model="relay-tools",
        messages=[{"role": "user", "content": "count-check"}],
        extra_headers={"anthropic-beta": "token-counting-2099-01-01"},
    )
    assert counted.input_tokens == 42
    [received] = upstream.calls("/v1/messages/count_tokens", "count-check")
    assert received.json == {
        "model": "up-tools",
        "messages": [{"role": "user", "content": "count-check"}],
    }
    assert received.headers["anthropic-beta"] == "token-counting-2099-01-01"


def test_models_report_the_upstreams_limits_and_capabilities(
    relay: ServerProcess, key: str
) -> None:
    with relay_http(relay, key) as http:
        deadline = time.monotonic() + 30
        while (info := http.get("/v1/models/relay-tools").json())["max_tokens"] is None:
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        assert info["max_tokens"] == MODEL_INFO["max_tokens"]
        assert info["max_input_tokens"] == MODEL_INFO["max_input_tokens"]
        assert info["capabilities"] == MODEL_INFO["capabilities"]
        # An upstream that cannot say (404 here) leaves them unknown.
        unknown = http.get("/v1/models/relay-garbage").json()
        assert unknown["capabilities"] is None and unknown["max_tokens"] is None
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url)
    model = client.models.retrieve("relay-tools")
    assert model.capabilities is not None and model.capabilities.structured_outputs.supported


def test_values_the_relay_cannot_hold_are_forwarded_as_sent(
    upstream: RecordingUpstream, relay: ServerProcess, key: str
) -> None:
    """Only the top-level keys are split: a number no double holds, a duplicate key, an
    escape reach the upstream byte for byte (decoding them would fail or change them)."""
    body = (
        b'{"model":"relay-tools","max_tokens":5,"messages":[{"role":"user","content":'
        b'"caf\\u00e9 bytes-check"}],"tools":[{"name":"t","input_schema":{"type":"object",'
        b'"properties":{"n":{"type":"number","maximum":1e400}}}}],"metadata":{"user_id":"a",'
        b'"user_id":"b"},"temperature":1e-1}'
    )
    with relay_http(relay, key) as http:
        response = http.post("/v1/messages", content=body)
    assert response.status_code == 200, response.text
    [received] = upstream.calls("/v1/messages", "bytes-check")
    assert received.body == body.replace(b'"relay-tools"', b'"up-tools"')


def test_an_error_object_answered_with_200_is_that_error(relay: ServerProcess, key: str) -> None:
    """Not a message to store as a success: the upstream's error, retried in a batch."""
    with relay_http(relay, key) as http:
        response = http.post(
            "/v1/messages",
            json={"model": "relay-error200", "max_tokens": 5, "messages": USER},
        )
    assert response.status_code == 529, response.text
    assert response.json()["error"] == {"type": "overloaded_error", "message": "busy"}


def test_the_relays_own_credentials_refused_upstream_are_not_the_clients(
    relay: ServerProcess, key: str
) -> None:
    """An upstream 401 is the relay's misconfiguration: a 500 naming it, not retried,
    rather than an AuthenticationError about the client's own (valid) key."""
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url)
    with pytest.raises(anthropic.InternalServerError, match="HTTP 401") as caught:
        client.messages.create(model="relay-unauthorized", max_tokens=5, messages=USER)
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_a_stream_answered_without_an_event_stream_is_an_error(
    relay: ServerProcess, key: str
) -> None:
    with relay_http(relay, key) as http:
        response = http.post(
            "/v1/messages",
            json={"model": "relay-garbage", "max_tokens": 5, "messages": USER, "stream": True},
        )
    assert response.status_code == 500, response.text
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["type"] == "api_error"


def test_a_stream_that_keeps_flowing_is_not_cut_by_the_timeout(
    relay: ServerProcess, key: str
) -> None:
    """``timeout_seconds`` (1 s here) bounds the silence between events, not the stream: a
    2 s stream with an event every 0.4 s ends normally."""
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url)
    with client.messages.stream(model="relay-trickle", max_tokens=5, messages=USER) as stream:
        message = stream.get_final_message()
    assert message.model == "relay-trickle" and message.stop_reason == "end_turn"


def test_fast_mode_is_refused_in_a_relayed_batch(relay: ServerProcess, key: str) -> None:
    """A batch must not buy fast mode from the upstream's sync API."""
    api = Api(relay.base_url, key)
    params = {"model": "relay-tools", "max_tokens": 5, "messages": USER, "speed": "fast"}
    batch = api.create([{"custom_id": "fast", "params": params}])
    api.wait_ended(batch["id"])
    [line] = api.results(batch["id"])
    assert line["result"]["error"]["error"] == {
        "type": "invalid_request_error",
        "message": "speed: fast mode is not supported for requests in a Message Batch",
    }


# ------------------------------------------------------------------------------ issue 7's rows


def _received_as(upstream: RecordingUpstream, body: dict[str, Any]) -> int:
    """How many calls reached the upstream with exactly ``body`` but for ``model``."""
    return sum(
        1
        for received in upstream.received
        if received.path == "/v1/messages"
        and received.json.get("model") == "up-tools"
        and without_model(received.json) == without_model(body)
    )


@pytest.mark.parametrize("row", list(ROWS))
def test_each_row_is_relayed_as_sent(
    upstream: RecordingUpstream, relay: ServerProcess, key: str, row: str
) -> None:
    """Every body of the table, through the latest SDK to a relay model: the relay does not
    judge it (valid or not, its upstream does), it forwards it whole with its betas, and the
    upstream's answer comes back. (The recording upstream answers every body alike; a real
    one refuses the malformed rows with its own 400.)"""
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url, max_retries=0)
    method: Any = client.beta.messages.create if ROWS[row].betas else client.messages.create
    arguments = call_args(method, ROWS[row], "relay-tools")
    before = _received_as(upstream, ROWS[row].params("relay-tools"))
    message = method(**arguments)
    assert message.model == "relay-tools"
    assert _received_as(upstream, ROWS[row].params("relay-tools")) == before + 1
    if ROWS[row].betas:
        [received, *_] = reversed(upstream.calls("/v1/messages", ""))
        assert received.headers["anthropic-beta"] == ",".join(ROWS[row].betas)


def test_every_row_is_relayed_as_sent_in_a_batch(
    upstream: RecordingUpstream, relay: ServerProcess, key: str
) -> None:
    """The table as two batches (the beta rows in one made with their betas): each body
    reaches the upstream once more, as sent but for ``model``, and succeeds."""
    client = anthropic.Anthropic(api_key=key, base_url=relay.base_url, max_retries=0)
    betas = sorted({beta for row in ROWS.values() for beta in row.betas})
    before = {name: _received_as(upstream, row.params("relay-tools")) for name, row in ROWS.items()}
    for beta_rows, batches, options in (
        (False, client.messages.batches, {}),
        (True, client.beta.messages.batches, {"betas": betas}),
    ):
        requests: Any = [
            {"custom_id": name, "params": row.params("relay-tools")}
            for name, row in ROWS.items()
            if bool(row.betas) == beta_rows
        ]
        batch: Any = batches.create(requests=requests, **options)
        deadline = time.monotonic() + 60
        while batch.processing_status != "ended":
            assert time.monotonic() < deadline, batch
            time.sleep(0.05)
            batch = batches.retrieve(batch.id, **options)
        results = list(batches.results(batch.id, **options))
        assert {result.result.type for result in results} == {"succeeded"}, results
    for name, row in ROWS.items():
        params = row.params("relay-tools")
        twins = sum(other.params("relay-tools") == params for other in ROWS.values())
        assert _received_as(upstream, params) == before[name] + twins, name
