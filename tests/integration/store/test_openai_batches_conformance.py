"""Batches made through the OpenAI surface, on every store: their extra fields round-trip,
each surface lists and claims only what is its own, a refused input file makes a batch that
is ended from the start, and token totals sum the stored outcomes."""

from __future__ import annotations

from test_store_conformance import (
    T0,
    assert_counts,
    claim_all,
    done,
    new_batch,
    new_batch_for,
    params_for,
    workspace,
)

from batchyard import ids
from batchyard.store.protocols import Store
from batchyard.store.records import NewBatch, NewRequest, OpenAIBatch

OPENAI = OpenAIBatch(
    endpoint="/v1/chat/completions",
    input_file_id="file-abc",
    completion_window="24h",
    metadata=b'{"job":"nightly"}',
    model="sim",
)


def openai_batch_for(workspace_id: int, openai: OpenAIBatch = OPENAI) -> NewBatch:
    base = new_batch_for(workspace_id)
    return NewBatch(
        id=ids.openai_batch_id(),
        workspace_id=workspace_id,
        created_at=base.created_at,
        expires_at=base.expires_at,
        archives_at=base.archives_at,
        openai=openai,
    )


async def test_openai_fields_round_trip_and_claims_say_chat(store: Store) -> None:
    ws = await workspace(store, "a")
    chat_body = b'{"model":"sim","messages":[{"role":"user","content":"hi"}]}'
    record = await store.batches.create_batch(
        openai_batch_for(ws), [NewRequest("c1", "sim", chat_body)]
    )
    assert record.openai == OPENAI and record.status == "in_progress"
    fetched = await store.batches.get_batch(ws, record.id)
    assert fetched is not None and fetched.openai == OPENAI
    anthropic = await new_batch(store, ws, 1)
    assert anthropic.openai is None

    claimed = {c.custom_id: c for c in await claim_all(store)}
    assert claimed["c1"].chat and claimed["c1"].params == chat_body
    assert not claimed["r00000"].chat


async def test_each_surface_lists_only_its_own_batches(store: Store) -> None:
    ws = await workspace(store, "a")
    anthropic = [await new_batch(store, ws, 1) for _ in range(2)]
    openai = [
        await store.batches.create_batch(
            openai_batch_for(ws), [NewRequest("c", "sim", params_for("c"))]
        )
        for _ in range(3)
    ]
    page = await store.batches.list_batches(ws, limit=10, after_id=None, before_id=None)
    assert page is not None and [b.id for b in page.batches] == [b.id for b in anthropic[::-1]]
    page = await store.batches.list_batches(ws, limit=2, after_id=None, before_id=None, openai=True)
    assert page is not None and page.has_more
    assert [b.id for b in page.batches] == [openai[2].id, openai[1].id]
    page = await store.batches.list_batches(
        ws, limit=2, after_id=openai[1].id, before_id=None, openai=True
    )
    assert page is not None and [b.id for b in page.batches] == [openai[0].id]
    # A cursor of the other surface names nothing here.
    assert (
        await store.batches.list_batches(
            ws, limit=2, after_id=anthropic[0].id, before_id=None, openai=True
        )
        is None
    )


async def test_a_refused_input_file_makes_a_batch_ended_from_the_start(store: Store) -> None:
    ws = await workspace(store, "a")
    failed = OpenAIBatch(
        endpoint="/v1/chat/completions",
        input_file_id="file-bad",
        completion_window="24h",
        errors=b'[{"code":"invalid_json_line","line":2,"message":"x","param":null}]',
    )
    record = await store.batches.create_batch(openai_batch_for(ws, failed), [])
    assert record.status == "ended" and record.ended_at == T0 and record.total == 0
    assert (await assert_counts(store, record)).openai == failed
    assert await claim_all(store) == []


async def test_token_totals_sum_the_stored_outcomes(store: Store) -> None:
    ws = await workspace(store, "a")
    record = await new_batch(store, ws, 3)
    assert await store.batches.token_totals(record.seq) == (0, 0)
    claimed = await claim_all(store)
    await store.queue.finish([done(c) for c in claimed[:2]], [], T0)
    assert await store.batches.token_totals(record.seq) == (6, 10)


async def test_result_files_are_recorded_once(store: Store) -> None:
    ws = await workspace(store, "a")
    record = await store.batches.create_batch(
        openai_batch_for(ws), [NewRequest("c", "sim", params_for("c"))]
    )
    await store.batches.record_result_files(record.seq, "file-out", None, T0)
    await store.batches.record_result_files(record.seq, "file-other", "file-err", T0 + 1)
    fetched = await store.batches.get_batch(ws, record.id)
    assert fetched is not None and fetched.openai is not None
    assert fetched.openai.files_made
    assert (fetched.openai.output_file_id, fetched.openai.error_file_id) == ("file-out", None)
