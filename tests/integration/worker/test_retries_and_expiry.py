"""Retryable engine failures are retried with backoff; others error at once; expiry works."""

from __future__ import annotations

import pytest
from harness import message_request, sim_config
from inprocess import InProcessServer

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


@pytest.fixture
def server_config() -> str:
    # Long enough for every retry of the first test on a loaded machine, short enough that the
    # glacial model (30 x 0.4 s, one at a time) cannot finish before it.
    return sim_config(extra_models=FAULTY_MODELS, max_attempts=3, expiry_seconds=5)


async def test_retryable_errors_are_retried_until_success_or_attempts_run_out(
    server: InProcessServer,
) -> None:
    async with await server.api("retries") as api:
        batch = await api.create(
            [message_request(f"flaky-{n}", model="flaky", text=f"t{n}") for n in range(5)]
            + [
                message_request("down", model="down"),
                message_request("rejects", model="rejects"),
                message_request("hangs", model="hangs"),
            ]
        )
        ended = await api.wait_ended(batch["id"])
        assert ended["request_counts"]["succeeded"] == 5
        assert ended["request_counts"]["errored"] == 3
        results = {line["custom_id"]: line["result"] for line in await api.results(batch["id"])}
    # Two overloaded calls, then success on the third attempt.
    assert all(results[f"flaky-{n}"]["type"] == "succeeded" for n in range(5))
    down = results["down"]["error"]["error"]
    assert down["type"] == "api_error" and "call 3" in down["message"], down
    rejected = results["rejects"]["error"]["error"]
    assert rejected["type"] == "invalid_request_error" and "call 1" in rejected["message"]
    # A call that outlives the model's timeout_seconds is cancelled and retried as a timeout.
    hung = results["hangs"]["error"]["error"]
    assert hung["type"] == "timeout_error" and "0.3 s" in hung["message"], hung


async def test_unstarted_requests_expire_at_expires_at(server: InProcessServer) -> None:
    async with await server.api("expiry") as api:
        batch = await api.create(
            [message_request(f"g{n}", model="glacial", text=f"t{n}") for n in range(30)]
        )
        ended = await api.wait_ended(batch["id"], timeout=30)
        counts = ended["request_counts"]
        assert counts["expired"] > 0 and counts["succeeded"] > 0, counts
        assert counts["succeeded"] + counts["expired"] == 30, counts
        types = [line["result"]["type"] for line in await api.results(batch["id"])]
        assert types.count("expired") == counts["expired"] and len(types) == 30
