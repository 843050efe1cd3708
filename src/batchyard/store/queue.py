"""The worker's side of the queue: claim with a lease, keep leases, record outcomes.

Invariants enforced here:

* **No request is leased twice at once**: a claim moves ``queued`` rows to ``running`` in one
  statement; on PostgreSQL the candidates are locked ``FOR UPDATE SKIP LOCKED`` as they are
  read, so concurrent claimers never pick the same row; SQLite serializes writers, so the
  same statement is safe there without the lock clause.
* **Fair shares**: which queued requests a claim takes is decided in that statement, by the
  order :mod:`batchyard.store.fairness` describes; the same statement returns what the
  worker needs of each request's batch, so a claim is one round trip.
* **Exactly one outcome per request**: every claim bumps ``attempt``, the fencing token. An
  outcome or a retry is applied only while the row is still ``running`` under the attempt
  that produced it, and only that attempt's outcome is stored (one flush may carry a stale
  attempt's outcome beside the current one).
* Counters and batch ends move through :mod:`batchyard.store.ledger`, in the same
  transaction as the request states.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    FromClause,
    Select,
    Update,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)

from batchyard.store.database import Database
from batchyard.store.fairness import MAX_READY_BATCHES, interleaved
from batchyard.store.ledger import apply_tally
from batchyard.store.records import (
    FINAL_STATES,
    ClaimedRequest,
    Finished,
    Retry,
    UnstartedState,
)
from batchyard.store.rows import (
    CHUNK,
    closing_batches,
    decode_headers,
    insert_many,
)
from batchyard.store.tables import batches, openai_batches, outcomes, requests

_OUTCOME_COLUMNS = ("row_id", "outcome", "input_tokens", "output_tokens")
#: On SQLite, how many positions a batch's share is read from (see ``_fair_claim``).
_RANGE_PER_SHARE = 4
#: The batch of the row a claim updates, for subqueries in its RETURNING.
_CLAIMED_BATCH: ColumnElement[int] = literal_column("requests.batch_seq")


class SqlQueue:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgresql = db.writer.dialect.name == "postgresql"

    async def claim(
        self,
        *,
        limit: int,
        now: int,
        lease_until: int,
        models: Sequence[str] | None = None,
        other_models: bool = False,
    ) -> list[ClaimedRequest]:
        statement = _claim_statement(
            by_model=models is not None, other_models=other_models, postgresql=self._postgresql
        )
        parameters: dict[str, int | list[str]] = {
            "limit": limit,
            "now": now,
            "lease_until": lease_until,
        }
        if models is not None:
            parameters["models"] = list(models)
        async with self._db.writer.begin() as conn:
            rows = (await conn.execute(statement, parameters)).all()
        headers = {row.batch_seq: decode_headers(row.headers) for row in rows if row.headers}
        claimed = [
            ClaimedRequest(
                row_id=row.id,
                batch_seq=row.batch_seq,
                custom_id=row.custom_id,
                attempt=row.attempt,
                params=row.params,
                headers=headers.get(row.batch_seq, ()),
                chat=bool(row.chat),
            )
            for row in rows
        ]
        return interleaved(claimed)

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
                        (f.row_id, f.outcome, f.input_tokens, f.output_tokens)
                        for f in chunk
                        if (f.row_id, f.attempt) in won and f.outcome is not None
                    ]
                    if stored:
                        await insert_many(conn, outcomes, _OUTCOME_COLUMNS, stored)
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


@functools.cache
def _claim_statement(*, by_model: bool, other_models: bool, postgresql: bool) -> Update:
    """The claim: lease the requests :func:`_fair_claim` picks; built once per shape, with
    the ``limit``, ``now``, ``lease_until`` and ``models`` parameters bound when run."""
    return (
        update(requests)
        .where(requests.c.id.in_(_fair_claim(by_model, other_models, postgresql=postgresql)))
        .values(
            state="running",
            attempt=requests.c.attempt + 1,
            lease_expires_at=bindparam("lease_until"),
            not_before=None,
        )
        .returning(
            requests.c.id,
            requests.c.batch_seq,
            requests.c.custom_id,
            requests.c.attempt,
            requests.c.params,
            # What the worker needs of each request's batch, in the same round trip. Named
            # in full: SQLAlchemy writes RETURNING's own columns unqualified, which inside
            # these subqueries would name the subquery's table.
            select(batches.c.headers)
            .where(batches.c.seq == _CLAIMED_BATCH)
            .scalar_subquery()
            .label("headers"),
            exists().where(openai_batches.c.batch_seq == _CLAIMED_BATCH).label("chat"),
        )
    )


def _fair_claim(by_model: bool, other_models: bool, *, postgresql: bool) -> Select[tuple[int]]:
    """The ids of the queued requests a claim of ``limit`` takes, in the order of
    :mod:`batchyard.store.fairness`, as one query.

    Each ready batch knows where its queue starts (``start``: the position of its first due
    request) and its share (``limit`` over the number of workspaces times its workspace's
    ready batches, plus one); it offers up to ``share`` due rows from ``start`` on, read from
    ``ix_requests_batch_queued``: on PostgreSQL a ``LATERAL`` subquery locks them
    ``SKIP LOCKED`` (concurrent claimers take the next rows, never the same ones); on SQLite,
    which serializes writers, the first ``share`` due rows among the positions
    ``[start, start + 4 x share)``. The window functions rank at most a few ``limit`` rows.

    Requests of models no engine serves (``other_models``) are claimed oldest first instead:
    they are only errored, and fairness buys them nothing.
    """
    limit: BindParameter[int] = bindparam("limit")
    now: BindParameter[int] = bindparam("now")

    def due(table: FromClause) -> list[ColumnElement[bool]]:
        conditions = [
            table.c.state == "queued",
            or_(table.c.not_before.is_(None), table.c.not_before <= now),
        ]
        if by_model:
            in_models = table.c.model.in_(bindparam("models", expanding=True))
            conditions.append(~in_models if other_models else in_models)
        return conditions

    open_batch = and_(batches.c.status == "in_progress", batches.c.expires_at > now)
    if other_models:
        return (
            select(requests.c.id)
            .where(
                *due(requests), requests.c.batch_seq.in_(select(batches.c.seq).where(open_batch))
            )
            .order_by(requests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    probe = requests.alias("probe")
    first_due = (
        select(probe.c.batch_position)
        .where(probe.c.batch_seq == batches.c.seq, *due(probe))
        .order_by(probe.c.batch_position)
        .limit(1)
        .scalar_subquery()
    )
    with_start = (
        select(batches.c.seq, batches.c.workspace_id, batches.c.priority, first_due.label("start"))
        .where(open_batch)
        .subquery("with_start")
    )
    tiers = (
        select(
            with_start,
            func.rank()
            .over(partition_by=with_start.c.workspace_id, order_by=with_start.c.priority.desc())
            .label("tier"),
        )
        .where(with_start.c.start.is_not(None))
        .subquery("tiers")
    )
    # Each workspace's top-priority batches, taken one of each workspace in turn.
    picks = (
        select(
            tiers.c.seq,
            tiers.c.workspace_id,
            tiers.c.start,
            func.row_number()
            .over(partition_by=tiers.c.workspace_id, order_by=func.random())
            .label("pick"),
        )
        .where(tiers.c.tier == 1)
        .subquery("picks")
    )
    picked = (
        select(picks.c.seq, picks.c.workspace_id, picks.c.start)
        .order_by(picks.c.pick, func.random())
        .limit(MAX_READY_BATCHES)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    workspaces_ready = select(func.count(picked.c.workspace_id.distinct())).scalar_subquery()
    ways = func.count().over(partition_by=picked.c.workspace_id) * workspaces_ready
    ready = select(
        picked.c.seq,
        picked.c.workspace_id,
        picked.c.start,
        ((limit + ways - 1) // ways + 1).label("share"),
    ).cte("ready")
    columns = (ready.c.seq, ready.c.workspace_id)
    if postgresql:
        # Its next ``share`` due rows, skipping those other claimers hold: ordered by
        # position within the batch, so PostgreSQL walks the index from ``start`` whatever
        # its statistics say (a plain join may be planned as a scan per batch).
        next_rows = (
            select(requests.c.id)
            .where(
                requests.c.batch_seq == ready.c.seq,
                requests.c.batch_position >= ready.c.start,
                *due(requests),
            )
            .order_by(requests.c.batch_position)
            .limit(ready.c.share)
            .with_for_update(skip_locked=True)
            .lateral("next_rows")
        )
        offered = select(next_rows.c.id, *columns, ready.c.share).select_from(
            ready.join(next_rows, true())
        )
    else:
        # SQLite has no LATERAL and takes no column in a LIMIT: one index range of positions,
        # wide enough for the share when up to three in four of them are running, waiting
        # for a retry or of another model; the share is cut from it below.
        offered = (
            select(requests.c.id, *columns, ready.c.share)
            .select_from(
                ready.join(
                    requests,
                    and_(
                        requests.c.batch_seq == ready.c.seq,
                        requests.c.batch_position >= ready.c.start,
                        requests.c.batch_position
                        < ready.c.start + _RANGE_PER_SHARE * ready.c.share,
                    ),
                )
            )
            .where(*due(requests))
        )
    offers = offered.cte("offers").prefix_with("MATERIALIZED")
    turns = select(
        offers.c.id,
        offers.c.workspace_id,
        offers.c.seq,
        offers.c.share,
        func.row_number().over(partition_by=offers.c.seq, order_by=offers.c.id).label("turn"),
    ).cte("turns")
    rounds = (
        select(
            turns.c.id,
            func.row_number()
            .over(partition_by=turns.c.workspace_id, order_by=(turns.c.turn, turns.c.seq))
            .label("round"),
        )
        .where(turns.c.turn <= turns.c.share)
        .cte("rounds")
    )
    return select(rounds.c.id).order_by(rounds.c.round, func.random()).limit(limit)
