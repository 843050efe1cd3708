"""The file store on every backend: an upload is whole or absent, content comes back byte for
byte in order, lists page by ``created_at`` both ways without gaps or repeats, workspaces are
walls, a generated file exists once per batch and part, and the expiry sweep is bounded."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from itertools import pairwise
from typing import Literal

import pytest
from store_backends import Backend
from test_store_conformance import T0, new_batch_for, workspace

from batchyard import ids
from batchyard.store.protocols import Store
from batchyard.store.records import FileRecord, NewFile

SECOND = 1_000_000
MIB = 1 << 20


def new_file(
    workspace_id: int,
    *,
    created_at: int = T0,
    purpose: str = "batch",
    expires_at: int | None = None,
    filename: str = "input.jsonl",
) -> NewFile:
    return NewFile(
        id=ids.file_id(),
        workspace_id=workspace_id,
        filename=filename,
        purpose=purpose,
        created_at=created_at,
        expires_at=expires_at,
    )


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def upload(store: Store, new: NewFile, *parts: bytes) -> FileRecord:
    return await store.files.create_file(new, pieces(*parts))


async def content_of(store: Store, file_id: str) -> bytes:
    return b"".join([chunk async for chunk in store.files.iter_content(file_id)])


async def test_an_upload_comes_back_byte_for_byte(store: Store, backend: Backend) -> None:
    ws = await workspace(store, "acme")
    # Odd piece sizes across the 1 MiB chunk boundary, every byte value.
    data = os.urandom(3 * MIB + 12345)
    cuts = [0, 1, 65536, MIB - 7, MIB + 1, 2 * MIB, len(data)]
    parts = [data[a:b] for a, b in pairwise(cuts)]
    new = new_file(ws, filename="données.jsonl", expires_at=T0 + 3600 * SECOND)

    record = await upload(store, new, *parts, b"")

    assert record == FileRecord(
        id=new.id,
        workspace_id=ws,
        filename="données.jsonl",
        purpose="batch",
        bytes=len(data),
        created_at=T0,
        expires_at=T0 + 3600 * SECOND,
        status="processed",
        batch_seq=None,
        batch_part=None,
    )
    assert await store.files.get_file(ws, new.id) == record
    assert await content_of(store, new.id) == data
    if backend.is_sql:  # stored as ~1 MiB rows whatever pieces it came in
        chunks = [len(chunk) async for chunk in store.files.iter_content(new.id)]
        assert chunks == [MIB, MIB, MIB, 12345]


async def test_an_empty_upload_is_a_file_of_zero_bytes(store: Store) -> None:
    ws = await workspace(store, "acme")
    record = await upload(store, new_file(ws))
    assert record.bytes == 0
    assert await content_of(store, record.id) == b""


async def test_an_upload_that_fails_midway_leaves_nothing(store: Store, backend: Backend) -> None:
    ws = await workspace(store, "acme")
    new = new_file(ws)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (2 * MIB + 5)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.files.create_file(new, broken())

    assert await store.files.get_file(ws, new.id) is None
    page = await store.files.list_files(ws, purpose=None, after=None, limit=10, order="desc")
    assert page is not None and page.files == []
    assert await content_of(store, new.id) == b""
    if backend.is_sql:
        counts = await backend.row_counts()
        assert (counts["files"], counts["file_chunks"]) == (0, 0)


async def test_files_are_invisible_outside_their_workspace(store: Store) -> None:
    acme, other = await workspace(store, "acme"), await workspace(store, "other")
    record = await upload(store, new_file(acme), b"secret")

    assert await store.files.get_file(other, record.id) is None
    assert await store.files.delete_file(other, record.id) is None
    page = await store.files.list_files(other, purpose=None, after=None, limit=10, order="desc")
    assert page is not None and page.files == []
    # Nor can another workspace use one of ours as its cursor.
    listed = await store.files.list_files(
        other, purpose=None, after=record.id, limit=10, order="desc"
    )
    assert listed is None
    assert await store.files.get_file(acme, record.id) == record


async def list_all(
    store: Store,
    ws: int,
    *,
    limit: int,
    order: Literal["asc", "desc"],
    purpose: str | None = None,
) -> list[list[str]]:
    """Every page, following ``after`` from the last id of each."""
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await store.files.list_files(
            ws, purpose=purpose, after=after, limit=limit, order=order
        )
        assert page is not None
        pages.append([record.id for record in page.files])
        if not page.has_more:
            return pages
        after = page.files[-1].id


async def test_lists_page_by_creation_time_both_ways(store: Store) -> None:
    ws = await workspace(store, "acme")
    made = []
    for n in range(7):
        purpose = "user_data" if n % 3 == 0 else "batch"
        made.append(await upload(store, new_file(ws, created_at=T0 + n * SECOND, purpose=purpose)))
    oldest_first = [record.id for record in made]

    assert await list_all(store, ws, limit=3, order="asc") == [
        oldest_first[0:3],
        oldest_first[3:6],
        oldest_first[6:],
    ]
    newest_first = oldest_first[::-1]
    assert await list_all(store, ws, limit=3, order="desc") == [
        newest_first[0:3],
        newest_first[3:6],
        newest_first[6:],
    ]
    # A full last page says there is no more.
    assert await list_all(store, ws, limit=7, order="desc") == [newest_first]
    batch_files = [record.id for record in made if record.purpose == "batch"]
    assert await list_all(store, ws, limit=2, order="asc", purpose="batch") == [
        batch_files[0:2],
        batch_files[2:4],
    ]
    missing = await store.files.list_files(
        ws, purpose=None, after=ids.file_id(), limit=3, order="desc"
    )
    assert missing is None


async def test_files_made_in_the_same_microsecond_page_without_gaps(store: Store) -> None:
    ws = await workspace(store, "acme")
    made = {(await upload(store, new_file(ws))).id for _ in range(9)}
    for order in ("asc", "desc"):
        pages = await list_all(store, ws, limit=2, order=order)
        seen = [file_id for page in pages for file_id in page]
        assert sorted(seen) == sorted(made), "every file exactly once"


async def test_delete_removes_the_file_and_its_content(store: Store, backend: Backend) -> None:
    ws = await workspace(store, "acme")
    kept = await upload(store, new_file(ws), b"kept")
    gone = await upload(store, new_file(ws), b"a" * (MIB + 1))

    assert await store.files.delete_file(ws, gone.id) == gone
    assert await store.files.get_file(ws, gone.id) is None
    assert await content_of(store, gone.id) == b""
    assert await store.files.delete_file(ws, gone.id) is None
    assert await content_of(store, kept.id) == b"kept"
    if backend.is_sql:
        counts = await backend.row_counts()
        assert (counts["files"], counts["file_chunks"]) == (1, 1)


async def test_a_download_of_a_file_deleted_meanwhile_stops(store: Store) -> None:
    ws = await workspace(store, "acme")
    record = await upload(store, new_file(ws), *[os.urandom(MIB) for _ in range(12)])
    stream = store.files.iter_content(record.id)
    first = await anext(stream)
    await store.files.delete_file(ws, record.id)
    rest = [chunk async for chunk in stream]
    assert len(first) + sum(map(len, rest)) < 12 * MIB


async def test_a_generated_file_is_added_once_per_batch_and_part(store: Store) -> None:
    ws = await workspace(store, "acme")
    batch = await store.batches.create_batch(new_batch_for(ws), [])
    output = new_file(ws, purpose="batch_output", filename="batch_output.jsonl")

    added = await store.files.add_generated_file(output, batch.seq, "output")
    assert (added.id, added.bytes, added.batch_seq, added.batch_part) == (
        output.id,
        None,
        batch.seq,
        "output",
    )
    again = await store.files.add_generated_file(new_file(ws), batch.seq, "output")
    assert again == added
    error = await store.files.add_generated_file(new_file(ws), batch.seq, "error")
    assert error.id != added.id
    assert await content_of(store, added.id) == b""

    await store.files.set_file_bytes(added.id, 4321)
    found = await store.files.get_file(ws, added.id)
    assert found is not None and found.bytes == 4321


async def test_concurrent_adds_of_a_generated_file_agree(store: Store, backend: Backend) -> None:
    ws = await workspace(store, "acme")
    batch = await store.batches.create_batch(new_batch_for(ws), [])
    async with backend.another_handle(store) as other:
        added = await asyncio.gather(
            *(
                handle.files.add_generated_file(new_file(ws), batch.seq, "output")
                for handle in [store, other] * 4
            )
        )
    assert len({record.id for record in added}) == 1
    page = await store.files.list_files(ws, purpose=None, after=None, limit=10, order="desc")
    assert page is not None and [record.id for record in page.files] == [added[0].id]


async def test_the_expiry_sweep_removes_expired_files_in_bounded_steps(
    store: Store, backend: Backend
) -> None:
    ws = await workspace(store, "acme")
    now = T0 + 100 * SECOND
    expired = [
        await upload(store, new_file(ws, expires_at=now - n * SECOND), b"old" * 1000)
        for n in range(5)
    ]
    due_now = await upload(store, new_file(ws, expires_at=now), b"due")
    later = await upload(store, new_file(ws, expires_at=now + SECOND), b"later")
    forever = await upload(store, new_file(ws), b"forever")

    assert await store.sweeps.purge_expired_files(now, limit=4) == 4
    assert await store.sweeps.purge_expired_files(now, limit=4) == 2
    assert await store.sweeps.purge_expired_files(now, limit=4) == 0

    for record in [*expired, due_now]:
        assert await store.files.get_file(ws, record.id) is None
        assert await content_of(store, record.id) == b""
    assert await content_of(store, later.id) == b"later"
    assert await content_of(store, forever.id) == b"forever"
    if backend.is_sql:
        counts = await backend.row_counts()
        assert (counts["files"], counts["file_chunks"]) == (2, 2)
