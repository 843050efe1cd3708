"""Every store implementation against the :class:`SubmissionStore` contract.

Requests of an ``anthropic-batch`` model go to an upstream Message Batch: gathering moves
them to ``submitted`` with their submission in one change, after which nothing else claims,
re-queues or settles them; each gets exactly one result, from its own submission, and the
counts add up throughout. Runs on every backend (``-k memory`` picks one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from store_backends import Backend
from test_store_conformance import (
    HOUR,
    SECOND,
    T0,
    assert_counts,
    claim_all,
    new_batch,
    new_batch_for,
    outcomes,
    params_for,
    requeue,
    workspace,
)

from batchyard.store.protocols import Store
from batchyard.store.records import (
    BatchRecord,
    Candidate,
    GatherPlan,
    NewRequest,
    Submission,
    UpstreamResult,
)

LEASE = 60 * SECOND
SEEN: list[list[Candidate]] = []


def take_all(candidates: Sequence[Candidate]) -> list[list[int]]:
    """One group of everything offered (and remember what was offered)."""
    SEEN.append(list(candidates))
    return [[c.row_id for c in candidates]] if candidates else []


def in_pairs(candidates: Sequence[Candidate]) -> list[list[int]]:
    """Full pairs only: an odd one out stays queued."""
    ids = [c.row_id for c in candidates]
    return [ids[i : i + 2] for i in range(0, len(ids) - 1, 2)]


async def gather(
    store: Store,
    *,
    plan: GatherPlan = take_all,
    now: int = T0,
    limit: int = 1000,
    names: Sequence[str] = ("sim",),
) -> list[Submission]:
    return await store.submissions.gather(
        model="up", names=names, now=now, lease_until=now + LEASE, limit=limit, plan=plan
    )


def result(row_id: int, state: str = "succeeded") -> UpstreamResult:
    outcome = f'{{"row":{row_id}}}'.encode() if state in ("succeeded", "errored") else None
    return UpstreamResult(row_id, state, outcome, input_tokens=2, output_tokens=3)  # type: ignore[arg-type]


async def submitted_batch(store: Store, n: int = 3) -> tuple[BatchRecord, Submission]:
    record = await new_batch(store, await workspace(store, "a"), n)
    [submission] = await gather(store)
    return record, submission


async def test_gather_moves_requests_to_one_submission_that_nothing_else_touches(
    store: Store,
) -> None:
    record, submission = await submitted_batch(store, 3)
    assert (submission.state, submission.request_count, submission.model) == ("submitting", 3, "up")
    assert submission.upstream_id is None and not submission.cancel_wanted
    assert await store.batches.count_states(record.seq) == {"submitted": 3}
    batch = await assert_counts(store, record)
    assert batch.processing == 3
    # Not claimable, not re-queued by the lease sweep, not gathered again.
    assert await claim_all(store, now=T0 + 2 * HOUR) == []
    assert await requeue(store, T0 + 2 * HOUR) == 0
    assert await gather(store, now=T0 + 2 * HOUR) == []
    # Cancel settles only what is still queued: submitted requests wait for the upstream.
    canceled = await store.batches.cancel_batch(record.workspace_id, record.id, T0 + SECOND)
    assert canceled is not None and (canceled.status, canceled.processing) == ("canceling", 3)
    waiting = await store.submissions.submitted_requests(submission.id, with_params=True)
    assert [(r.model, r.params) for r in waiting] == [
        ("sim", params_for(f"r{i:05d}")) for i in range(3)
    ]
    bare = await store.submissions.submitted_requests(submission.id, with_params=False)
    assert [r.row_id for r in bare] == [r.row_id for r in waiting]
    assert {r.params for r in bare} == {b""}


async def test_gather_offers_due_requests_of_open_batches_and_named_models_oldest_first(
    store: Store,
) -> None:
    ws = await workspace(store, "a")
    headers = (("anthropic-beta", "x"),)
    wanted = await store.batches.create_batch(
        replace(new_batch_for(ws, created_at=T0 - 5 * SECOND), headers=headers),
        [NewRequest(f"w{i}", "sim", params_for(f"w{i}")) for i in range(3)],
    )
    await new_batch(store, ws, 2, model="other")
    expired = await new_batch(store, ws, 2, created_at=T0 - 30 * HOUR)
    closed = await new_batch(store, ws, 2)
    await store.batches.cancel_batch(ws, closed.id, T0)
    SEEN.clear()
    made = await gather(store, limit=2)
    assert len(made) == 1 and made[0].headers == headers
    [offered] = SEEN
    assert [c.queued_since for c in offered] == [T0 - 5 * SECOND] * 2
    assert [c.size for c in offered] == [len(params_for("w0")), len(params_for("w1"))]
    assert {c.headers for c in offered} == {headers}
    assert await store.batches.count_states(wanted.seq) == {"submitted": 2, "queued": 1}
    assert await store.batches.count_states(expired.seq) == {"queued": 2}


async def test_a_plan_may_leave_requests_queued(store: Store) -> None:
    record = await new_batch(store, await workspace(store, "a"), 5)
    made = await gather(store, plan=in_pairs)
    assert [s.request_count for s in made] == [2, 2]
    assert len({s.id for s in made}) == 2
    assert await store.batches.count_states(record.seq) == {"submitted": 4, "queued": 1}
    [left] = await claim_all(store)
    assert left.custom_id == "r00004"


async def test_concurrent_gatherers_never_take_a_request_twice(
    store: Store, backend: Backend
) -> None:
    record = await new_batch(store, await workspace(store, "a"), 200)

    def small(candidates: Sequence[Candidate]) -> list[list[int]]:
        return [[c.row_id] for c in candidates]

    async with backend.another_handle(store) as other:
        rounds = await asyncio.gather(
            *(gather(s, plan=small, limit=30) for s in [store, other] * 5)
        )
    made = [submission for round_ in rounds for submission in round_]
    assert sum(s.request_count for s in made) == 200
    waiting = [
        row.row_id
        for s in made
        for row in await store.submissions.submitted_requests(s.id, with_params=False)
    ]
    assert len(waiting) == len(set(waiting)) == 200
    await assert_counts(store, record)


async def test_a_submission_is_leased_to_one_process_at_a_time(store: Store) -> None:
    _, submission = await submitted_batch(store)
    # The gatherer holds it until its lease runs out.
    assert (
        await store.submissions.claim_submissions(
            model="up", now=T0, lease_until=T0 + LEASE, limit=10
        )
        == []
    )
    later = T0 + LEASE + 1
    [claimed] = await store.submissions.claim_submissions(
        model="up", now=later, lease_until=later + LEASE, limit=10
    )
    assert claimed.id == submission.id and claimed.state == "submitting"
    assert (
        await store.submissions.claim_submissions(
            model="elsewhere", now=later * 2, lease_until=later * 2 + LEASE, limit=10
        )
        == []
    )
    # Rescheduled: released, due at next_check_at, one more check counted.
    await store.submissions.reschedule(
        submission.id, next_check_at=later + 10 * SECOND, cancel_sent=False, now=later
    )
    assert (
        await store.submissions.claim_submissions(
            model="up", now=later + SECOND, lease_until=later + LEASE, limit=10
        )
        == []
    )
    [again] = await store.submissions.claim_submissions(
        model="up", now=later + 10 * SECOND, lease_until=later + LEASE, limit=10
    )
    assert again.checks == 1


async def test_mark_submitted_records_the_first_upstream_id_only(store: Store) -> None:
    _, submission = await submitted_batch(store)
    marked = await store.submissions.mark_submitted(
        submission.id, "msgbatch_up1", now=T0, next_check_at=T0 + SECOND
    )
    assert marked == "msgbatch_up1"
    # A second send (another process, after a lost lease) learns the recorded id.
    assert (
        await store.submissions.mark_submitted(
            submission.id, "msgbatch_up2", now=T0, next_check_at=T0
        )
        == "msgbatch_up1"
    )
    [claimed] = await store.submissions.claim_submissions(
        model="up", now=T0 + SECOND, lease_until=T0 + LEASE, limit=10
    )
    assert (claimed.state, claimed.upstream_id, claimed.checks) == (
        "submitted",
        "msgbatch_up1",
        0,
    )


async def test_each_result_is_written_once_and_ends_the_batch(store: Store) -> None:
    record, submission = await submitted_batch(store, 4)
    rows = [
        r.row_id
        for r in await store.submissions.submitted_requests(submission.id, with_params=False)
    ]
    first = [result(rows[0]), result(rows[1], "errored")]
    assert (
        await store.submissions.record_results(submission.id, first, now=T0, lease_until=T0 + LEASE)
        == 2
    )
    # The same results again (a second download), and a stranger's submission: nothing.
    assert (
        await store.submissions.record_results(submission.id, first, now=T0, lease_until=T0 + LEASE)
        == 0
    )
    assert (
        await store.submissions.record_results(
            "upbatch_other", [result(rows[2])], now=T0, lease_until=T0 + LEASE
        )
        == 0
    )
    batch = await assert_counts(store, record)
    assert (batch.succeeded, batch.errored, batch.processing) == (1, 1, 2)
    rest = [result(rows[2], "canceled"), result(rows[3], "expired")]
    assert (
        await store.submissions.record_results(
            submission.id, rest, now=T0 + SECOND, lease_until=T0 + LEASE
        )
        == 2
    )
    batch = await assert_counts(store, record)
    assert (batch.status, batch.ended_at, batch.canceled, batch.expired) == (
        "ended",
        T0 + SECOND,
        1,
        1,
    )
    stored = await outcomes(store, record)
    assert stored["r00000"] == ("succeeded", f'{{"row":{rows[0]}}}'.encode())
    assert stored["r00002"] == ("canceled", None)
    assert (
        await store.submissions.close_submission(
            submission.id, "ended", leftover=lambda: b"unused", now=T0
        )
        == 0
    )


async def test_closing_a_submission_errors_what_is_left_and_stops_it(store: Store) -> None:
    record, submission = await submitted_batch(store, 3)
    [first, *_] = await store.submissions.submitted_requests(submission.id, with_params=False)
    await store.submissions.record_results(
        submission.id, [result(first.row_id)], now=T0, lease_until=T0 + LEASE
    )
    refusal = (
        b'{"outcome":"errored","type":"invalid_request_error","message":"no","request_id":"r"}'
    )
    closed = await store.submissions.close_submission(
        submission.id, "failed", leftover=lambda: refusal, now=T0 + SECOND
    )
    assert closed == 2
    batch = await assert_counts(store, record)
    assert (batch.status, batch.succeeded, batch.errored) == ("ended", 1, 2)
    assert (await outcomes(store, record))["r00002"] == ("errored", refusal)
    assert (
        await store.submissions.claim_submissions(
            model="up", now=T0 + 2 * HOUR, lease_until=T0 + 3 * HOUR, limit=10
        )
        == []
    )


async def test_cancel_is_wanted_once_every_local_batch_of_it_is_canceling(store: Store) -> None:
    ws = await workspace(store, "a")
    one = await new_batch(store, ws, 2)
    two = await new_batch(store, ws, 2)
    [submission] = await gather(store)
    await store.submissions.mark_submitted(submission.id, "msgbatch_up", now=T0, next_check_at=T0)

    async def claim(now: int) -> Submission:
        [claimed] = await store.submissions.claim_submissions(
            model="up", now=now, lease_until=now + SECOND, limit=10
        )
        return claimed

    await store.batches.cancel_batch(ws, one.id, T0)
    assert not (await claim(T0)).cancel_wanted
    await store.batches.cancel_batch(ws, two.id, T0)
    assert (await claim(T0 + 2 * SECOND)).cancel_wanted
    await store.submissions.reschedule(
        submission.id, next_check_at=T0, cancel_sent=True, now=T0 + 4 * SECOND
    )
    claimed = await claim(T0 + 4 * SECOND)
    assert claimed.cancel_sent and not claimed.cancel_wanted
