"""Requests relayed through upstream Message Batches: gather, lease, record, close.

Invariants enforced here:

* **Never submitted twice, never lost**: a submission row and its requests' move from
  ``queued`` to ``submitted`` commit in one transaction, before anyone calls the upstream.
  A ``submitted`` request is outside the claim query (``state = 'queued'``) and the lease
  sweep (``state = 'running'``), so no crash or expired lease sends it anywhere else; its
  submission row says what to re-send or poll after a restart.
* **One gatherer per request**: the candidates are locked ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL (SQLite serializes writers), and moved only from ``queued``.
* **Exactly one result per request**: a result is written only while its request is still
  ``submitted`` to that submission; a second download of the same results writes nothing.
* Counters and batch ends move through :mod:`batchyard.store.ledger`, in the same
  transaction as the request states.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import Row, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard import ids
from batchyard.store.database import Database
from batchyard.store.ledger import Tally, apply_tally
from batchyard.store.records import (
    FINAL_STATES,
    Candidate,
    GatherPlan,
    Headers,
    Submission,
    SubmittedRequest,
    UpstreamResult,
)
from batchyard.store.rows import CHUNK, chat_batches, decode_headers, encode_headers
from batchyard.store.tables import batches, outcomes, requests, submissions

_OPEN = ("submitting", "submitted")


class SqlSubmissions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def gather(
        self,
        *,
        model: str,
        names: Sequence[str],
        now: int,
        lease_until: int,
        limit: int,
        plan: GatherPlan,
    ) -> list[Submission]:
        query = (
            select(
                requests.c.id,
                func.length(requests.c.params).label("size"),
                batches.c.headers,
                batches.c.created_at,
            )
            .select_from(requests.join(batches, batches.c.seq == requests.c.batch_seq))
            .where(
                requests.c.state == "queued",
                requests.c.model.in_(list(names)),
                or_(requests.c.not_before.is_(None), requests.c.not_before <= now),
                batches.c.status == "in_progress",
                batches.c.expires_at > now,
            )
            .order_by(requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=requests)
        )
        made: list[Submission] = []
        async with self._db.writer.begin() as conn:
            decoded: dict[bytes | None, Headers] = {}
            candidates = []
            for row in await conn.execute(query):
                if row.headers not in decoded:
                    decoded[row.headers] = decode_headers(row.headers)
                candidates.append(Candidate(row.id, row.size, decoded[row.headers], row.created_at))
            by_row = {candidate.row_id: candidate for candidate in candidates}
            for group in plan(candidates):
                headers = by_row[group[0]].headers
                made.append(await _submit(conn, model, group, headers, now, lease_until))
        return made

    async def claim_submissions(
        self, *, model: str, now: int, lease_until: int, limit: int
    ) -> list[Submission]:
        due = (
            select(submissions.c.id)
            .where(
                submissions.c.model == model,
                submissions.c.state.in_(_OPEN),
                submissions.c.next_check_at <= now,
                or_(
                    submissions.c.lease_expires_at.is_(None),
                    submissions.c.lease_expires_at < now,
                ),
            )
            .order_by(submissions.c.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._db.writer.begin() as conn:
            wanted = (await conn.scalars(due)).all()
            if not wanted:
                return []
            rows = (
                await conn.execute(
                    update(submissions)
                    .where(submissions.c.id.in_(wanted))
                    .values(lease_expires_at=lease_until)
                    .returning(*submissions.c)
                )
            ).all()
            return [
                _record(row, cancel_wanted=await _cancel_wanted(conn, row))
                for row in sorted(rows, key=lambda row: row.next_check_at)
            ]

    async def submitted_requests(
        self, submission_id: str, *, with_params: bool
    ) -> list[SubmittedRequest]:
        columns = [requests.c.id, requests.c.model, requests.c.batch_seq]
        if with_params:
            columns.append(requests.c.params)
        async with self._db.reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(*columns)
                    .where(
                        requests.c.submission_id == submission_id,
                        requests.c.state == "submitted",
                    )
                    .order_by(requests.c.id)
                )
            ).all()
            if not with_params:
                return [SubmittedRequest(row.id, row.model, b"") for row in rows]
            chat = await chat_batches(conn, {row.batch_seq for row in rows})
            return [
                SubmittedRequest(row.id, row.model, row.params, row.batch_seq in chat)
                for row in rows
            ]

    async def mark_submitted(
        self, submission_id: str, upstream_id: str, *, now: int, next_check_at: int
    ) -> str | None:
        async with self._db.writer.begin() as conn:
            moved = await conn.execute(
                update(submissions)
                .where(submissions.c.id == submission_id, submissions.c.state == "submitting")
                .values(
                    state="submitted",
                    upstream_id=upstream_id,
                    submitted_at=now,
                    next_check_at=next_check_at,
                    checks=0,
                    lease_expires_at=None,
                )
            )
            if moved.rowcount:
                return upstream_id
            row = (
                await conn.execute(
                    select(submissions.c.state, submissions.c.upstream_id).where(
                        submissions.c.id == submission_id
                    )
                )
            ).first()
            return row.upstream_id if row is not None and row.state == "submitted" else None

    async def reschedule(
        self, submission_id: str, *, next_check_at: int, cancel_sent: bool, now: int
    ) -> None:
        values: dict[str, Any] = {
            "next_check_at": next_check_at,
            "checks": submissions.c.checks + 1,
            "lease_expires_at": None,
        }
        if cancel_sent:
            values["cancel_sent_at"] = now
        async with self._db.writer.begin() as conn:
            await conn.execute(
                update(submissions)
                .where(submissions.c.id == submission_id, submissions.c.state.in_(_OPEN))
                .values(values)
            )

    async def record_results(
        self, submission_id: str, results: Sequence[UpstreamResult], *, now: int, lease_until: int
    ) -> int:
        tally: defaultdict[int, Counter[str]] = defaultdict(Counter)
        written = 0
        async with self._db.writer.begin() as conn:
            for state in FINAL_STATES:
                group = [result for result in results if result.state == state]
                for start in range(0, len(group), CHUNK):
                    chunk = {result.row_id: result for result in group[start : start + CHUNK]}
                    rows = await _settle(conn, submission_id, list(chunk), state)
                    stored = [
                        {
                            "row_id": row.id,
                            "outcome": chunk[row.id].outcome,
                            "input_tokens": chunk[row.id].input_tokens,
                            "output_tokens": chunk[row.id].output_tokens,
                        }
                        for row in rows
                        if chunk[row.id].outcome is not None
                    ]
                    if stored:
                        await conn.execute(insert(outcomes), stored)
                    for row in rows:
                        tally[row.batch_seq][state] += 1
                    written += len(rows)
            await apply_tally(conn, tally, now)
            await conn.execute(
                update(submissions)
                .where(submissions.c.id == submission_id)
                .values(lease_expires_at=lease_until)
            )
        return written

    async def close_submission(
        self,
        submission_id: str,
        state: Literal["ended", "failed"],
        *,
        leftover: Callable[[], bytes],
        now: int,
    ) -> int:
        async with self._db.writer.begin() as conn:
            rows = await _settle(conn, submission_id, None, "errored")
            if rows:
                await conn.execute(
                    insert(outcomes), [{"row_id": row.id, "outcome": leftover()} for row in rows]
                )
            tally: Tally = {
                seq: Counter({"errored": count})
                for seq, count in Counter(row.batch_seq for row in rows).items()
            }
            await apply_tally(conn, tally, now)
            await conn.execute(
                update(submissions)
                .where(submissions.c.id == submission_id, submissions.c.state.in_(_OPEN))
                .values(state=state, ended_at=now, lease_expires_at=None)
            )
        return len(rows)


async def _submit(
    conn: AsyncConnection,
    model: str,
    group: Sequence[int],
    headers: Headers,
    now: int,
    lease_until: int,
) -> Submission:
    """Store one submission and move its requests to it, in the caller's transaction."""
    submission_id = ids.submission_id()
    await conn.execute(
        insert(submissions).values(
            id=submission_id,
            model=model,
            state="submitting",
            headers=encode_headers(headers),
            request_count=len(group),
            created_at=now,
            next_check_at=now,
            lease_expires_at=lease_until,
        )
    )
    for start in range(0, len(group), CHUNK):
        await conn.execute(
            update(requests)
            .where(requests.c.id.in_(group[start : start + CHUNK]), requests.c.state == "queued")
            .values(state="submitted", submission_id=submission_id, not_before=None)
        )
    return Submission(
        id=submission_id,
        model=model,
        state="submitting",
        upstream_id=None,
        headers=headers,
        request_count=len(group),
        created_at=now,
        checks=0,
        cancel_wanted=False,
        cancel_sent=False,
    )


async def _settle(
    conn: AsyncConnection, submission_id: str, row_ids: list[int] | None, state: str
) -> Sequence[Row[Any]]:
    """Move requests still ``submitted`` to this submission (those of ``row_ids``, or all)
    to ``state``; returns the rows that moved (``id``, ``batch_seq``)."""
    condition = [requests.c.submission_id == submission_id, requests.c.state == "submitted"]
    if row_ids is not None:
        condition.append(requests.c.id.in_(row_ids))
    return (
        await conn.execute(
            update(requests)
            .where(*condition)
            .values(state=state)
            .returning(requests.c.id, requests.c.batch_seq)
        )
    ).all()


async def _cancel_wanted(conn: AsyncConnection, row: Row[Any]) -> bool:
    """A submitted upstream batch all of whose requests belong to local batches being
    canceled (a request can only be waiting here while its batch has not ended)."""
    if row.state != "submitted" or row.cancel_sent_at is not None:
        return False
    still_wanted = exists().where(
        requests.c.submission_id == row.id,
        requests.c.state == "submitted",
        requests.c.batch_seq == batches.c.seq,
        batches.c.status == "in_progress",
    )
    anything_left = exists().where(
        requests.c.submission_id == row.id, requests.c.state == "submitted"
    )
    found = (await conn.execute(select(anything_left, ~still_wanted))).one()
    return bool(found[0] and found[1])


def _record(row: Row[Any], *, cancel_wanted: bool) -> Submission:
    return Submission(
        id=row.id,
        model=row.model,
        state=row.state,
        upstream_id=row.upstream_id,
        headers=decode_headers(row.headers),
        request_count=row.request_count,
        created_at=row.created_at,
        checks=row.checks,
        cancel_wanted=cancel_wanted,
        cancel_sent=row.cancel_sent_at is not None,
    )
