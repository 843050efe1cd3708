"""Retryable engine failures are retried with backoff; others error at once; expiry works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Api, ServerProcess, create_key, message_request, sim_config

FAULTY_MODELS = """
[[models]]
name = "flaky"
engine = "simulated"
fail_first_calls = 2
fail_first_error = "overloaded_error"

[[models]]
name = "down"
engine = "simulated"
fail_first_calls = 1000
fail_first_error = "api_error"

[[models]]
name = "rejects"
engine = "simulated"
fail_first_calls = 1000
fail_first_error = "invalid_request_error"

[[models]]
name = "hangs"
engine = "simulated"
latency_ms = 30000
timeout_seconds = 0.3

[[models]]
name = "glacial"
engine = "simulated"
latency_ms = 400
concurrency = 1
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("faults")
    config = sim_config(extra_models=FAULTY_MODELS, max_attempts=3, expiry_seconds=2)
    process = ServerProcess(workdir, f"sqlite:///{workdir / 'db.sqlite'}", config).start()
    yield process
    process.stop()


def test_retryable_errors_are_retried_until_success_or_attempts_run_out(
    server: ServerProcess,
) -> None:
    api = Api(server.base_url, create_key(server.db_url, "retries"))
    batch = api.create(
        [message_request(f"flaky-{n}", model="flaky", text=f"t{n}") for n in range(5)]
        + [
            message_request("down", model="down"),
            message_request("rejects", model="rejects"),
            message_request("hangs", model="hangs"),
        ]
    )
    ended = api.wait_ended(batch["id"])
    assert ended["request_counts"]["succeeded"] == 5
    assert ended["request_counts"]["errored"] == 3
    results = {line["custom_id"]: line["result"] for line in api.results(batch["id"])}
    # Two overloaded calls, then success on the third attempt.
    assert all(results[f"flaky-{n}"]["type"] == "succeeded" for n in range(5))
    down = results["down"]["error"]["error"]
    assert down["type"] == "api_error" and "call 3" in down["message"], down
    rejected = results["rejects"]["error"]["error"]
    assert rejected["type"] == "invalid_request_error" and "call 1" in rejected["message"]
    # A call that outlives the model's timeout_seconds is cancelled and retried as a timeout.
    hung = results["hangs"]["error"]["error"]
    assert hung["type"] == "timeout_error" and "0.3 s" in hung["message"], hung


def test_unstarted_requests_expire_at_expires_at(server: ServerProcess) -> None:
    api = Api(server.base_url, create_key(server.db_url, "expiry"))
    batch = api.create([message_request(f"g{n}", model="glacial", text=f"t{n}") for n in range(30)])
    ended = api.wait_ended(batch["id"], timeout=30)
    counts = ended["request_counts"]
    assert counts["expired"] > 0 and counts["succeeded"] > 0, counts
    assert counts["succeeded"] + counts["expired"] == 30, counts
    types = [line["result"]["type"] for line in api.results(batch["id"])]
    assert types.count("expired") == counts["expired"] and len(types) == 30
