"""The worker's side of the queue: claim with a lease, keep leases, record outcomes.

Invariants enforced here:

* **No request is leased twice at once**: a claim moves ``queued`` rows to ``running`` in one
  statement; on PostgreSQL the candidates are locked ``FOR UPDATE SKIP LOCKED`` inside a
  materialized CTE, so concurrent claimers never pick the same row; SQLite serializes
  writers, so the same statement is safe there without the lock clause.
* **Exactly one outcome per request**: every claim bumps ``attempt``, the fencing token. An
  outcome or a retry is applied only while the row is still ``running`` under the attempt
  that produced it, and only that attempt's outcome is stored (one flush may carry a stale
  attempt's outcome beside the current one).
* Counters and batch ends move through :mod:`batchyard.store.ledger`, in the same
  transaction as the request states.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import insert, or_, select, tuple_, update

from batchyard.store.database import Database
from batchyard.store.ledger import apply_tally
from batchyard.store.records import (
    FINAL_STATES,
    ClaimedRequest,
    Finished,
    Retry,
    UnstartedState,
)
from batchyard.store.rows import CHUNK, batch_headers, chat_batches, closing_batches
from batchyard.store.tables import batches, outcomes, requests


class SqlQueue:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self,
        *,
        limit: int,
        now: int,
        lease_until: int,
        models: Sequence[str] | None = None,
        other_models: bool = False,
    ) -> list[ClaimedRequest]:
        open_batches = select(batches.c.seq).where(
            batches.c.status == "in_progress", batches.c.expires_at > now
        )
        conditions = [
            requests.c.state == "queued",
            or_(requests.c.not_before.is_(None), requests.c.not_before <= now),
            requests.c.batch_seq.in_(open_batches),
        ]
        if models is not None:
            in_models = requests.c.model.in_(list(models))
            conditions.append(~in_models if other_models else in_models)
        candidates = (
            select(requests.c.id)
            .where(*conditions)
            .order_by(requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("candidates")
            .prefix_with("MATERIALIZED")
        )
        statement = (
            update(requests)
            .where(requests.c.id.in_(select(candidates.c.id)))
            .values(
                state="running",
                attempt=requests.c.attempt + 1,
                lease_expires_at=lease_until,
                not_before=None,
            )
            .returning(
                requests.c.id,
                requests.c.batch_seq,
                requests.c.custom_id,
                requests.c.attempt,
                requests.c.params,
            )
        )
        async with self._db.writer.begin() as conn:
            rows = (await conn.execute(statement)).all()
            seqs = {row.batch_seq for row in rows}
            headers = await batch_headers(conn, seqs) if rows else {}
            chat = await chat_batches(conn, seqs) if rows else set()
        claimed = [
            ClaimedRequest(
                row_id=row.id,
                batch_seq=row.batch_seq,
                custom_id=row.custom_id,
                attempt=row.attempt,
                params=row.params,
                headers=headers.get(row.batch_seq, ()),
                chat=row.batch_seq in chat,
            )
            for row in rows
        ]
        claimed.sort(key=lambda request: request.row_id)
        return claimed

    async def closing_batches(self, now: int) -> dict[int, UnstartedState]:
        async with self._db.reader.connect() as conn:
            return await closing_batches(conn, now)

    async def extend_leases(self, leases: Iterable[tuple[int, int]], until: int) -> None:
        pairs = list(leases)
        async with self._db.writer.begin() as conn:
            for start in range(0, len(pairs), CHUNK):
                await conn.execute(
                    update(requests)
                    .where(
                        tuple_(requests.c.id, requests.c.attempt).in_(pairs[start : start + CHUNK]),
                        requests.c.state == "running",
                    )
                    .values(lease_expires_at=until)
                )

    async def finish(self, finished: Sequence[Finished], retries: Sequence[Retry], now: int) -> int:
        async with self._db.writer.begin() as conn:
            tally: defaultdict[int, Counter[str]] = defaultdict(Counter)
            applied = 0
            for state in FINAL_STATES:
                group = [f for f in finished if f.state == state]
                for start in range(0, len(group), CHUNK):
                    chunk = group[start : start + CHUNK]
                    rows = (
                        await conn.execute(
                            update(requests)
                            .where(
                                tuple_(requests.c.id, requests.c.attempt).in_(
                                    [(f.row_id, f.attempt) for f in chunk]
                                ),
                                requests.c.state == "running",
                            )
                            .values(state=state, lease_expires_at=None)
                            .returning(requests.c.id, requests.c.attempt, requests.c.batch_seq)
                        )
                    ).all()
                    if not rows:
                        continue
                    # By (row, attempt): one flush may carry a stale attempt's outcome beside
                    # the current one of the same request; only the current one is written.
                    won = {(row.id, row.attempt) for row in rows}
                    stored = [
                        {
                            "row_id": f.row_id,
                            "outcome": f.outcome,
                            "input_tokens": f.input_tokens,
                            "output_tokens": f.output_tokens,
                        }
                        for f in chunk
                        if (f.row_id, f.attempt) in won and f.outcome is not None
                    ]
                    if stored:
                        await conn.execute(insert(outcomes), stored)
                    for row in rows:
                        tally[row.batch_seq][state] += 1
                    applied += len(rows)
            for retry in retries:
                await conn.execute(
                    update(requests)
                    .where(
                        requests.c.id == retry.row_id,
                        requests.c.attempt == retry.attempt,
                        requests.c.state == "running",
                    )
                    .values(
                        state="queued",
                        lease_expires_at=None,
                        not_before=retry.not_before,
                        attempt=retry.attempt - 1 if retry.unstarted else retry.attempt,
                    )
                )
            await apply_tally(conn, tally, now)
        return applied
