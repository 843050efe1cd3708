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
    assert message["model"] == "relayed", "the name the client asked for, not the upstream's"
    # The upstream's 529 is retried, then reported with its type and message.
    overloaded = results["overloaded"]["error"]["error"]
    assert overloaded["type"] == "overloaded_error" and "call 2" in overloaded["message"]
    # The upstream's 404 for its model is the relay's misconfiguration, not the client's
    # unknown model: a non-retryable api_error that names it.
    missing = results["missing"]["error"]["error"]
    assert missing["type"] == "api_error"
    assert "HTTP 404: model: no-such-model" in missing["message"]
    assert "upstream_model" in missing["message"]


def test_sync_messages_through_an_upstream(relay: ServerProcess) -> None:
    client = anthropic.Anthropic(api_key=add_key(relay.db_url, "sync"), base_url=relay.base_url)
    message = client.messages.create(
        model="relayed", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 8
    assert message.model == "relayed"
    # The relay judges no feature itself: the upstream (which does not think) refuses it.
    with pytest.raises(anthropic.BadRequestError, match="thinking is not supported by sim"):
        client.messages.create(
            model="relayed",
            max_tokens=8,
            messages=[{"role": "user", "content": "hi"}],
            thinking={"type": "adaptive"},
        )
    # /v1/models reports what the upstream says of its model (sim: no image input).
    capabilities = client.models.retrieve("relayed").capabilities
    assert capabilities is not None and not capabilities.image_input.supported
    with pytest.raises(anthropic.InternalServerError, match="no-such-model") as caught:
        client.messages.create(
            model="relayed-missing", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    # Asking again cannot help: the SDK is told not to retry.
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_count_tokens_through_an_upstream(relay: ServerProcess) -> None:
    """The upstream counts, for its own model name, what its answers report as input."""
    client = anthropic.Anthropic(
        api_key=add_key(relay.db_url, "count"), base_url=relay.base_url, max_retries=0
    )
    system = "Sort the ticket."
    messages: list[anthropic.types.MessageParam] = [
        {"role": "user", "content": "double charge in November"}
    ]
    counted = client.messages.count_tokens(model="relayed", system=system, messages=messages)
    message = client.messages.create(
        model="relayed", max_tokens=8, system=system, messages=messages
    )
    assert counted.input_tokens == message.usage.input_tokens == 7
    # The upstream's 404 says the relay is misconfigured, with the upstream's message.
    with pytest.raises(anthropic.InternalServerError, match="model: no-such-model"):
        client.messages.count_tokens(model="relayed-missing", messages=messages)
    # Counting is not generation: a model whose every answer fails still counts.
    assert client.messages.count_tokens(model="relayed-down", messages=messages).input_tokens == 4
