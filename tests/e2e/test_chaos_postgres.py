"""Chaos on PostgreSQL: two API servers and three workers (real processes) run a
10,000-request batch while a random worker is SIGKILLed and restarted every few seconds, one
API server is SIGKILLed, and the PostgreSQL server itself is restarted once.

The batch must end with exactly one result per ``custom_id`` and exact counts. Requests
claimed more than once (``attempt > 1``: an upper bound on those that ran twice) can only be
ones a killed worker held, or ones every worker held while the database was down: at most
``2 x concurrency`` per worker per event. The test prints the figure.

Restarting PostgreSQL breaks every other test's connections, so this test is marked
``serial``: ``make test`` runs it alone, after the parallel run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from harness import (
    POSTGRES_ADMIN_URL,
    ServerProcess,
    create_key,
    message_request,
    postgres_database,
    sim_config,
)

TOTAL = 10_000
WORKERS = 3
CONCURRENCY = 8
#: A worker holds twice its model's concurrency (one set running, one waiting).
HELD_PER_WORKER = 2 * CONCURRENCY


def restart_postgres() -> None:
    """``pg_ctlcluster ... restart`` of the local cluster (as the brief's machines run it)."""
    versions = sorted(Path("/etc/postgresql").iterdir())
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "restart"],
        check=True,
        timeout=120,
    )


def progress(base_urls: list[str], key: str, batch_id: str) -> dict[str, Any] | None:
    """The batch from whichever API server answers; ``None`` while none can (the database
    is restarting)."""
    for base_url in base_urls:
        try:
            response = httpx.get(
                f"{base_url}/v1/messages/batches/{batch_id}",
                headers={"x-api-key": key},
                timeout=10,
            )
        except httpx.TransportError:
            continue
        if response.status_code == 200:
            batch: dict[str, Any] = response.json()
            return batch
    return None


def _can_restart_the_test_server() -> bool:
    """The test server is this machine's cluster, and this user (root) may restart it."""
    return (
        urlsplit(POSTGRES_ADMIN_URL).hostname in {"127.0.0.1", "localhost", "::1"}
        and shutil.which("pg_ctlcluster") is not None
        and Path("/etc/postgresql").is_dir()
        and os.geteuid() == 0
    )


@pytest.mark.serial
@pytest.mark.skipif(
    not _can_restart_the_test_server(),
    reason="restarts the test PostgreSQL server: needs it local, pg_ctlcluster, and root",
)
def test_a_batch_survives_worker_kills_an_api_server_kill_and_a_database_restart(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261202)
    with postgres_database() as url:
        config = sim_config(
            lease_seconds=3,
            sim_latency_ms=50,
            sim_concurrency=CONCURRENCY,
            claim_size=64,
        )
        apis = [
            ServerProcess(tmp_path, url, config, extra_args=("--no-worker",)).start()
            for _ in range(2)
        ]
        workers = [ServerProcess(tmp_path, url, config, command="worker") for _ in range(WORKERS)]
        events: list[str] = []
        try:
            key = create_key(url, "chaos")
            created = httpx.post(
                f"{apis[0].base_url}/v1/messages/batches",
                json={
                    "requests": [message_request(f"r{n:05d}", text=f"t{n}") for n in range(TOTAL)]
                },
                headers={"x-api-key": key},
                timeout=120,
            )
            assert created.status_code == 200, created.text
            batch_id = created.json()["id"]
            for worker in workers:
                worker.start()
            serving = [api.base_url for api in apis]
            deadline = time.monotonic() + 300
            ended: dict[str, Any] | None = None
            while ended is None:
                assert time.monotonic() < deadline, f"not ended; events: {events}"
                time.sleep(rng.uniform(1.5, 3.0))
                batch = progress(serving, key, batch_id)
                done = batch["request_counts"]["succeeded"] if batch else 0
                if batch and batch["processing_status"] == "ended":
                    ended = batch
                    break
                victim = rng.randrange(WORKERS)
                workers[victim].kill()
                workers[victim].start()
                events.append(f"worker {victim} killed at {done}")
                if done > TOTAL * 0.2 and len(apis) == 2 and serving == [a.base_url for a in apis]:
                    apis[0].kill()
                    serving = [apis[1].base_url]
                    events.append(f"API server 0 killed at {done}")
                elif done > TOTAL * 0.45 and not any("database" in e for e in events):
                    restart_postgres()
                    events.append(f"database restarted at {done}")
            lines = httpx.get(
                f"{serving[0]}/v1/messages/batches/{batch_id}/results",
                headers={"x-api-key": key},
                timeout=120,
            ).text.splitlines()
            reclaimed = _count(url, "SELECT count(*) FROM requests WHERE attempt > 1")
        finally:
            for process in (*workers, *apis):
                process.stop()

    kills = sum("worker" in event for event in events)
    print(f"events: {events}")
    print(f"requests claimed more than once (ran twice at most): {reclaimed}")
    assert any("API server" in e for e in events) and any("database" in e for e in events)
    assert ended["request_counts"] == {
        "processing": 0,
        "succeeded": TOTAL,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    custom_ids = [json.loads(line)["custom_id"] for line in lines]
    assert len(custom_ids) == len(set(custom_ids)) == TOTAL
    assert reclaimed <= (kills + WORKERS) * HELD_PER_WORKER


def _count(url: str, query: str) -> int:
    async def run() -> int:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return int(await connection.fetchval(query))
        finally:
            await connection.close()

    return asyncio.run(run())
