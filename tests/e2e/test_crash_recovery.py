"""A real server killed with SIGKILL mid-batch loses nothing and duplicates nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
from harness import Api, ServerProcess, create_key, message_request, sim_config

TOTAL = 600


def stored_results(db_path: Path) -> dict[int, bytes]:
    with sqlite3.connect(db_path) as db:
        return dict(db.execute("SELECT row_id, outcome FROM outcomes").fetchall())


def running_requests(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        count: int = db.execute("SELECT count(*) FROM requests WHERE state = 'running'").fetchone()[
            0
        ]
    return count


def test_sigkill_mid_batch_then_restart_completes_exactly_once(tmp_path: Path) -> None:
    db_path = tmp_path / "batchyard.db"
    url = f"sqlite:///{db_path}"
    config = sim_config(lease_seconds=2, sim_latency_ms=40, sim_concurrency=8)
    first = ServerProcess(tmp_path, url, config).start()
    key = create_key(url, "crash")
    api = Api(first.base_url, key)
    batch = api.create([message_request(f"req-{n:04d}", text=f"ticket {n}") for n in range(TOTAL)])
    api.wait_until(batch["id"], lambda b: b["request_counts"]["succeeded"] >= 100)
    # Kill while requests are leased (on a loaded machine a poll can land between claims).
    deadline = time.monotonic() + 10
    while running_requests(db_path) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    first.kill()

    finished_before_kill = stored_results(db_path)
    assert 100 <= len(finished_before_kill) < TOTAL

    second = ServerProcess(tmp_path, url, config).start()
    try:
        api = Api(second.base_url, key)
        ended = api.wait_ended(batch["id"])
        lines = api.results(batch["id"])
    finally:
        second.stop()

    assert ended["request_counts"] == {
        "processing": 0,
        "succeeded": TOTAL,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    custom_ids = [line["custom_id"] for line in lines]
    assert len(custom_ids) == TOTAL == len(set(custom_ids))
    assert {line["result"]["type"] for line in lines} == {"succeeded"}
    # Results written before the kill are kept byte for byte: finished work is not re-run.
    final = stored_results(db_path)
    assert all(final[row_id] == outcome for row_id, outcome in finished_before_kill.items())
    # Requests that were leased to the killed process were run again after their lease expired.
    with sqlite3.connect(db_path) as db:
        rerun = db.execute("SELECT count(*) FROM requests WHERE attempt > 1").fetchone()[0]
    assert rerun > 0


def test_sigkill_during_create_leaves_no_partial_batch(tmp_path: Path) -> None:
    """Kill the server while a 50k-request create is in flight (upload or insert).

    Wherever the kill lands, the batch exists whole or not at all.
    """
    url = f"sqlite:///{tmp_path / 'batchyard.db'}"
    server = ServerProcess(tmp_path, url, sim_config()).start()
    key = create_key(url, "ingest")
    body = {"requests": [message_request(f"r{n}", text="x" * 200) for n in range(50_000)]}
    errors: list[BaseException] = []

    def post() -> None:
        try:
            httpx.post(
                f"{server.base_url}/v1/messages/batches",
                json=body,
                timeout=120,
                headers={"x-api-key": key},
            )
        except httpx.HTTPError as exc:
            errors.append(exc)

    sender = threading.Thread(target=post)
    sender.start()
    threading.Event().wait(0.8)
    server.kill()
    sender.join()

    restarted = ServerProcess(tmp_path, url, sim_config()).start()
    try:
        page = httpx.get(
            f"{restarted.base_url}/v1/messages/batches", headers={"x-api-key": key}
        ).json()
    finally:
        restarted.stop()
    # Either the create committed whole before the kill, or nothing of it exists.
    for batch in page["data"]:
        counts = batch["request_counts"]
        assert sum(counts.values()) == 50_000
    assert len(page["data"]) <= 1
    with sqlite3.connect(tmp_path / "batchyard.db") as db:
        stored = db.execute("SELECT count(*) FROM requests").fetchone()[0]
    assert stored == 50_000 * len(page["data"]), "no orphaned request rows"


def test_sigterm_records_finished_work_and_hands_back_the_rest(tmp_path: Path) -> None:
    """A clean stop leaves nothing leased: a restart resumes at once, not after the lease."""
    db_path = tmp_path / "batchyard.db"
    url = f"sqlite:///{db_path}"
    config = sim_config(lease_seconds=60, sim_latency_ms=200, sim_concurrency=8)
    first = ServerProcess(tmp_path, url, config).start()
    key = create_key(url, "graceful")
    api = Api(first.base_url, key)
    batch = api.create([message_request(f"req-{n:03d}", text=f"t{n}") for n in range(80)])
    api.wait_until(batch["id"], lambda b: b["request_counts"]["succeeded"] >= 8)
    first.stop()
    with sqlite3.connect(db_path) as db:
        states = dict(db.execute("SELECT state, count(*) FROM requests GROUP BY state"))
        charged = db.execute(
            "SELECT count(*) FROM requests WHERE state = 'queued' AND attempt > 0"
        ).fetchone()[0]
    assert "running" not in states, states
    # Only requests an engine had started (8 lanes) used up an attempt; those merely
    # buffered by the worker were handed back with their attempt returned.
    assert charged <= 8, charged

    second = ServerProcess(tmp_path, url, config).start()
    try:
        ended = Api(second.base_url, key).wait_ended(batch["id"], timeout=30)
    finally:
        second.stop()
    assert ended["request_counts"]["succeeded"] == 80
