"""The ``anthropic`` engine against a real Anthropic-compatible server: another batchyard.

No mock: the upstream is a second ``batchyard serve`` process serving the simulated engine,
so the relay sees real HTTP answers, including 529s and 400s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from harness import Api, ServerProcess, add_key, message_request, sim_config

DOWN_MODEL = """
[[models]]
name = "sim-down"
engine = "simulated"
fail_first_calls = 1000
fail_first_error = "overloaded_error"
"""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("upstream")
    upstream = ServerProcess(
        workdir, f"sqlite:///{workdir / 'up.sqlite'}", sim_config(extra_models=DOWN_MODEL)
    ).start()
    key = add_key(upstream.db_url, "relay")
    relay_models = "".join(
        f"""
[[models]]
name = "{name}"
engine = "anthropic"
base_url = "{upstream.base_url}"
api_key = "{key}"
upstream_model = "{upstream_model}"
"""
        for name, upstream_model in [
            ("relayed", "sim"),
            ("relayed-down", "sim-down"),
            ("relayed-missing", "no-such-model"),
        ]
    )
    config = sim_config(max_attempts=2).replace("[[models]]", relay_models + "\n[[models]]", 1)
    server = ServerProcess(workdir, f"sqlite:///{workdir / 'relay.sqlite'}", config).start()
    yield server
    server.stop()
    upstream.stop()


def test_batch_through_an_upstream(relay: ServerProcess) -> None:
    api = Api(relay.base_url, add_key(relay.db_url, "users"))
    batch = api.create(
        [message_request(f"ok-{n}", model="relayed", text=f"ticket {n}") for n in range(5)]
        + [
            message_request("overloaded", model="relayed-down"),
            message_request("missing", model="relayed-missing"),
            message_request("stop", model="relayed", stop_sequences=["alpha", "bravo"]),
        ]
    )
    ended = api.wait_ended(batch["id"])
    assert ended["request_counts"]["succeeded"] == 6, ended
    results = {line["custom_id"]: line["result"] for line in api.results(batch["id"])}
    message = results["ok-0"]["message"]
    assert message["content"][0]["text"] and message["usage"]["service_tier"] == "batch"
    # The upstream's 529 is retried, then reported with its type and message.
    overloaded = results["overloaded"]["error"]["error"]
    assert overloaded["type"] == "overloaded_error" and "call 2" in overloaded["message"]
    # The upstream's 404 for an unknown model is not retried.
    missing = results["missing"]["error"]["error"]
    assert missing == {"type": "not_found_error", "message": "model: no-such-model"}


def test_sync_messages_through_an_upstream(relay: ServerProcess) -> None:
    client = anthropic.Anthropic(api_key=add_key(relay.db_url, "sync"), base_url=relay.base_url)
    message = client.messages.create(
        model="relayed", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 8
    with pytest.raises(anthropic.NotFoundError, match="no-such-model"):
        client.messages.create(
            model="relayed-missing", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
