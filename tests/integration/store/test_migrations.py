"""Schema migrations on SQLite and PostgreSQL.

* The migrations, run from an empty database, make exactly the tables ``store/tables.py``
  declares (what a new database gets directly), compared by Alembic's autogenerate.
* A database made by the previous release (``previous_release/``: dumps of a database that
  batchyard at commit 7f0a037, the last release without migrations, made and filled through
  its API: a workspace and key, an ended batch with succeeded and errored results, an open
  batch with a queued request) is refused by a server with one line naming ``batchyard db
  upgrade``; after the upgrade every row is there, the old key works, the old results read
  the same, the queued request runs, and the new tables work.
* A database older than the baseline is refused by the upgrade, and an upgrade twice is a
  no-op.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from harness import postgres_database, sim_config
from inprocess import running_app
from sqlalchemy.engine import Connection

from batchyard.errors import SchemaMismatch
from batchyard.store import open_store
from batchyard.store.database import connect
from batchyard.store.schema import head, upgrade
from batchyard.store.tables import metadata

DUMPS = Path(__file__).with_name("previous_release")
#: The key the previous release's database was filled with (workspace ``acme``).
OLD_KEY = "sk-by-previous-release-key"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        with postgres_database() as url:
            yield url


async def restore_previous_release(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.executescript((DUMPS / "sqlite.sql").read_text())
        return
    connection = await asyncpg.connect(url)
    try:
        await connection.execute((DUMPS / "postgresql.sql").read_text())
    finally:
        await connection.close()


async def run_upgrade(url: str) -> tuple[str | None, str]:
    db = connect(url)
    try:
        done = await upgrade(db)
    finally:
        await db.dispose()
    return done.before, done.after


def differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_the_migrations_make_the_declared_schema(empty_url: str) -> None:
    assert await run_upgrade(empty_url) == (None, head())
    db = connect(empty_url)
    try:
        async with db.reader.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await db.dispose()
    # A new database made directly (create_all, stamped) is at the same revision.
    assert await run_upgrade(empty_url) == (head(), head())


async def test_a_previous_release_database_is_refused_then_upgraded_with_its_data(
    empty_url: str, tmp_path: Path
) -> None:
    await restore_previous_release(empty_url)
    with pytest.raises(SchemaMismatch, match=r"run `batchyard db upgrade`"):
        await open_store(empty_url)
    assert await run_upgrade(empty_url) == (None, head())

    async with running_app(tmp_path / "app", sim_config(), database_url=empty_url) as server:
        async with server.client(OLD_KEY) as http:
            listed = (await http.get("/v1/messages/batches")).json()["data"]
            assert len(listed) == 2
            ended, queued = sorted(listed, key=lambda batch: batch["processing_status"])
            assert ended["processing_status"] == "ended"
            assert ended["request_counts"]["succeeded"] == 5
            assert ended["request_counts"]["errored"] == 1
            lines = (await http.get(f"/v1/messages/batches/{ended['id']}/results")).text
            results = {
                json.loads(line)["custom_id"]: json.loads(line) for line in lines.splitlines()
            }
            assert sorted(results) == ["bad", "t0", "t1", "t2", "t3", "t4"]
            assert results["bad"]["result"]["error"]["error"]["message"] == "model: nope"
            assert results["t0"]["result"]["message"]["usage"]["service_tier"] == "batch"
            # The request the previous release left queued runs on the upgraded database.
            for _ in range(500):
                batch = (await http.get(f"/v1/messages/batches/{queued['id']}")).json()
                if batch["processing_status"] == "ended":
                    break
                await asyncio.sleep(0.02)
            assert batch["request_counts"]["succeeded"] == 1
        # The tables the upgrade added work: a file uploaded with the old key.
        async with server.client(OLD_KEY) as http:
            uploaded = await http.post(
                "/v1/files",
                files={"file": ("in.jsonl", b"{}\n")},
                data={"purpose": "batch"},
            )
            assert uploaded.status_code == 200, uploaded.text


async def test_an_upgrade_refuses_a_database_older_than_the_baseline(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ancient.sqlite'}"
    with sqlite3.connect(tmp_path / "ancient.sqlite") as db:
        db.execute("CREATE TABLE batches (seq INTEGER PRIMARY KEY, id TEXT)")
    with pytest.raises(SchemaMismatch, match="older than the migrations' baseline"):
        await run_upgrade(url)
    with pytest.raises(SchemaMismatch, match="made before migrations"):
        await open_store(url)


async def test_a_revision_from_a_newer_batchyard_is_refused_not_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.sqlite'}"
    await run_upgrade(url)
    with sqlite3.connect(tmp_path / "newer.sqlite") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    for attempt in (open_store(url), run_upgrade(url)):
        with pytest.raises(SchemaMismatch, match="9999, which a newer batchyard made"):
            await attempt


async def test_processes_starting_together_on_an_empty_database_all_open_it(
    empty_url: str,
) -> None:
    """An API server and workers started at once on a new database: one makes the tables,
    the others wait for it and then find them (an advisory lock on PostgreSQL, SQLite's
    ``BEGIN IMMEDIATE``), rather than all creating them and all but one failing."""
    stores = await asyncio.gather(*(open_store(empty_url) for _ in range(4)))
    for store in stores:
        await store.close()
    assert await run_upgrade(empty_url) == (head(), head())
