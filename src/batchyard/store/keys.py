"""Workspaces and API keys. Only a key's SHA-256 is stored; a key belongs to one workspace."""

from __future__ import annotations

from sqlalchemy import insert, select

from batchyard.store.database import Database
from batchyard.store.rows import workspace_named
from batchyard.store.tables import api_keys


class SqlKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_api_key(
        self, workspace_name: str, key_hash: str, key_hint: str, now: int
    ) -> None:
        async with self._db.writer.begin() as conn:
            workspace_id = await workspace_named(conn, workspace_name, now)
            await conn.execute(
                insert(api_keys).values(
                    workspace_id=workspace_id, key_hash=key_hash, key_hint=key_hint, created_at=now
                )
            )

    async def workspace_for_key(self, key_hash: str) -> int | None:
        async with self._db.reader.connect() as conn:
            workspace_id: int | None = await conn.scalar(
                select(api_keys.c.workspace_id).where(api_keys.c.key_hash == key_hash)
            )
            return workspace_id
