"""The relay keeps to its upstream's rate limits: learned from the upstream's headers when
none is configured, or configured as ``rpm``; for one worker here, and for three workers
sharing one PostgreSQL database in ``test_three_postgres_workers_share_one_budget``.

The upstream is a second ``batchyard serve`` whose simulated models refuse calls over
``rate_limit_rpm`` with a real 429 (a bucket of one second's calls), and its access log
counts those 429s: pacing that works gets (almost) none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Api, ServerProcess, add_key, message_request, postgres_database, sim_config

#: 10 calls a second per upstream model.
RPM = 600
REQUESTS = 120

UPSTREAM = "".join(
    f"""
[[models]]
name = "{name}"
engine = "simulated"
rate_limit_rpm = {RPM}
latency_ms_min = 50
latency_ms_max = 400
concurrency = 4
"""
    for name in ("limited-a", "limited-b")
)


def relay_config(upstream: ServerProcess, key: str, concurrency: int) -> str:
    models = f"""
[[models]]
name = "learned"
engine = "anthropic"
base_url = "{upstream.base_url}"
api_key = "{key}"
upstream_model = "limited-a"
concurrency = {concurrency}

[[models]]
name = "configured"
engine = "anthropic"
base_url = "{upstream.base_url}"
api_key = "{key}"
upstream_model = "limited-b"
concurrency = {concurrency}
rpm = {RPM}
"""
    return sim_config(max_attempts=8, retry_base_seconds=1.0, retry_max_seconds=5).replace(
        "[[models]]", models + "\n[[models]]", 1
    )


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path,
        f"sqlite:///{tmp_path / 'upstream.db'}",
        sim_config(extra_models=UPSTREAM),
        extra_args=("--log-level", "info"),
    ).start()
    yield server
    server.stop()


def run_both_models(api: Api) -> tuple[dict[str, int], float]:
    """A batch of ``REQUESTS`` for each relayed model; its counts and how long it took."""
    started = time.monotonic()
    batch = api.create(
        [message_request(f"learned-{n}", model="learned", text=f"a {n}") for n in range(REQUESTS)]
        + [
            message_request(f"configured-{n}", model="configured", text=f"b {n}")
            for n in range(REQUESTS)
        ]
    )
    ended = api.wait_ended(batch["id"], timeout=120)
    counts: dict[str, int] = ended["request_counts"]
    return counts, time.monotonic() - started


def assert_paced(counts: dict[str, int], seconds: float, upstream: ServerProcess) -> None:
    assert counts["succeeded"] == 2 * REQUESTS, counts
    refused = upstream.answered(429)
    assert refused <= 2, f"{refused} calls refused upstream\n{upstream.log()[-3000:]}"
    # Each model: a burst of 5, then 10 a second. Far slower is not keeping up (the bound is
    # loose: worker processes start while the clock runs, on a shared 2-core machine).
    least = (REQUESTS - RPM / 120) / (RPM / 60)
    assert least - 1 <= seconds <= 2 * least + 5, seconds


def test_one_relay_keeps_to_learned_and_configured_limits(
    tmp_path: Path, upstream: ServerProcess
) -> None:
    key = add_key(upstream.db_url, "relay")
    relay = ServerProcess(
        tmp_path, f"sqlite:///{tmp_path / 'relay.db'}", relay_config(upstream, key, 32)
    ).start()
    try:
        api = Api(relay.base_url, add_key(relay.db_url, "users"))
        counts, seconds = run_both_models(api)
        # A sync answer through the relay carries the upstream's rate-limit headers.
        answer = api.http.post(
            "/v1/messages",
            json={
                "model": "learned",
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "x"}],
            },
        )
    finally:
        relay.stop()
    assert_paced(counts, seconds, upstream)
    assert answer.headers["anthropic-ratelimit-requests-limit"] == str(RPM)


def test_three_postgres_workers_share_one_budget(tmp_path: Path, upstream: ServerProcess) -> None:
    """Three workers, each with lanes enough to send the whole budget alone."""
    key = add_key(upstream.db_url, "relay")
    config = relay_config(upstream, key, 16)
    with postgres_database() as url:
        api_server = ServerProcess(tmp_path, url, config, extra_args=("--no-worker",)).start()
        workers = [ServerProcess(tmp_path, url, config, command="worker") for _ in range(3)]
        try:
            for worker in workers:
                worker.start()
            api = Api(api_server.base_url, add_key(url, "users"))
            counts, seconds = run_both_models(api)
        finally:
            for process in (*workers, api_server):
                process.stop()
    # Unshared, each worker would pace itself to the whole limit: three times too fast.
    assert_paced(counts, seconds, upstream)
