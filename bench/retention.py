"""Benchmark: does the database give back what retention removes, without one huge DELETE?

For SQLite and PostgreSQL, one process, through the store (no HTTP: what is measured is the
database): ``--cycles`` times, a batch of ``--requests`` requests (``--outcome-bytes`` of
stored result each) is created, run to the end and then purged by the retention sweep
(``batchyard.worker.maintenance.purge_archived``: 2,000 requests per transaction). Prints
the database size at the baseline (the schema, before the first batch), with the batch's
results stored, and after the purge (PostgreSQL: after the ``VACUUM`` autovacuum would run),
for each cycle; and the longest single purge transaction, beside the time one DELETE of the
whole batch takes in the same run (the baseline it replaces).

Goal (issue 11 item 4): no purge transaction holds the database for more than a small
fraction of the single DELETE; SQLite's file shrinks back to the baseline after every purge
(``auto_vacuum = INCREMENTAL``); PostgreSQL, which keeps a table's freed pages for reuse
rather than shrinking its files, stops growing: every cycle after the first ends at the same
size.

Usage: ``python bench/retention.py [--requests 100000] [--cycles 3] [--outcome-bytes 500]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import postgres_database

from batchyard import ids
from batchyard.store import open_store
from batchyard.store.database import connect
from batchyard.store.protocols import Store
from batchyard.store.records import Finished, NewBatch, NewRequest
from batchyard.store.tables import outcomes, requests
from batchyard.timeutil import now_us
from batchyard.worker import maintenance

MiB = 1024 * 1024


async def database_size(url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as checkpoint:  # the WAL's pages into the file, WAL emptied
            checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    db = connect(url)
    try:
        async with db.writer.connect() as conn:
            return int(await conn.scalar(select(text("pg_database_size(current_database())"))))
    finally:
        await db.dispose()


async def vacuum(url: str) -> None:
    """What autovacuum does on its own a minute later, done now so the figure is stable."""
    if url.startswith("sqlite"):
        return
    db = connect(url)
    try:
        async with db.writer.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM (ANALYZE) requests")
            await conn.exec_driver_sql("VACUUM (ANALYZE) outcomes")
    finally:
        await db.dispose()


async def fill(store: Store, workspace_id: int, count: int, outcome_bytes: int) -> int:
    """A batch of ``count`` requests, every one succeeded with a result of about
    ``outcome_bytes``; already past its retention time. Returns its seq."""
    now = now_us()
    params = b'{"model":"sim","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
    record = await store.batches.create_batch(
        NewBatch(
            id=ids.batch_id(),
            workspace_id=workspace_id,
            created_at=now,
            expires_at=now + 3600 * 10**6,
            archives_at=now + 1,
        ),
        [NewRequest(f"r{i}", "sim", params) for i in range(count)],
    )
    outcome = b'{"outcome":"succeeded","message":"' + b"x" * outcome_bytes + b'"}'
    while claimed := await store.queue.claim(
        limit=5000, now=now_us(), lease_until=now_us() + 10**9
    ):
        finished = [Finished(c.row_id, c.attempt, "succeeded", outcome, 10, 10) for c in claimed]
        await store.queue.finish(finished, [], now_us())
    return record.seq


async def timed_purge(store: Store) -> tuple[float, float]:
    """The retention sweep's loop (``maintenance.purge_archived``), each step timed:
    (total seconds, longest single step)."""
    longest = 0.0
    started = time.perf_counter()
    while True:
        step_started = time.perf_counter()
        done = await store.sweeps.purge_archived(now_us(), limit=maintenance.REQUESTS_PER_PURGE)
        longest = max(longest, time.perf_counter() - step_started)
        if not done:
            return time.perf_counter() - started, longest


async def one_delete(url: str, store: Store, workspace_id: int, count: int, size: int) -> float:
    """The baseline: the whole batch's outcomes and requests in one transaction."""
    seq = await fill(store, workspace_id, count, size)
    db = connect(url)
    try:
        started = time.perf_counter()
        async with db.writer.begin() as conn:
            await conn.execute(
                delete(outcomes).where(
                    outcomes.c.row_id.in_(select(requests.c.id).where(requests.c.batch_seq == seq))
                )
            )
            await conn.execute(delete(requests).where(requests.c.batch_seq == seq))
        return time.perf_counter() - started
    finally:
        await db.dispose()


async def run(name: str, url: str, args: argparse.Namespace) -> None:
    store = await open_store(url)
    try:
        await store.keys.create_api_key("bench", "bench-hash", "sk-by-bench", now_us())
        workspace_id = await store.keys.workspace_for_key("bench-hash")
        assert workspace_id is not None
        baseline = await database_size(url)
        print(f"{name}: baseline {baseline / MiB:.1f} MiB")
        for cycle in range(1, args.cycles + 1):
            await fill(store, workspace_id, args.requests, args.outcome_bytes)
            loaded = await database_size(url)
            total, longest = await timed_purge(store)
            await vacuum(url)
            after = await database_size(url)
            print(
                f"{name}: cycle {cycle}: with results {loaded / MiB:.1f} MiB, after the purge "
                f"{after / MiB:.1f} MiB ({after / baseline:.2f}x the baseline); purge "
                f"{total:.2f} s, longest transaction {longest * 1000:.0f} ms"
            )
        single = await one_delete(url, store, workspace_id, args.requests, args.outcome_bytes)
        print(
            f"{name}: one DELETE of the whole batch (the baseline): {single * 1000:.0f} ms; "
            f"longest purge transaction / that: {longest / single:.2f}"
        )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--outcome-bytes", type=int, default=500)
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run("sqlite", f"sqlite:///{tmp}/retention.db", args))
    with postgres_database() as url:  # the test server (BATCHYARD_TEST_POSTGRES_URL)
        asyncio.run(run("postgresql", url, args))


if __name__ == "__main__":
    main()
