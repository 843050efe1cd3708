"""The file service on the in-memory store: generated files go through the renderer it is
given (size computed once and stored), a download cut by a delete breaks off, and the
maintenance sweep deletes expired files in bounded steps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from batchyard import ids
from batchyard.errors import ApiError, StoreError
from batchyard.service.batches import Caller
from batchyard.service.files import FileService
from batchyard.store import MEMORY_URL, open_store
from batchyard.store.protocols import Store
from batchyard.store.records import FileRecord, NewBatch, NewFile
from batchyard.timeutil import now_us
from batchyard.worker.maintenance import purge_expired_files

CALLER = Caller(workspace_id=1, public_url="http://testserver")
RENDERED = b'{"id": "batch_req_1", "custom_id": "a"}\n'


class Renderer:
    """A stand-in for the batch layer: fixed content, counting the sizes asked for."""

    def __init__(self) -> None:
        self.sized: list[str] = []

    async def content(self, record: FileRecord) -> AsyncIterator[bytes]:
        yield RENDERED

    async def size(self, record: FileRecord) -> int:
        self.sized.append(record.id)
        return len(RENDERED)


def new_file(*, expires_at: int | None = None) -> NewFile:
    return NewFile(
        id=ids.file_id(),
        workspace_id=CALLER.workspace_id,
        filename="batch_output.jsonl",
        purpose="batch_output",
        created_at=now_us(),
        expires_at=expires_at,
    )


async def generated_file(store: Store) -> FileRecord:
    now = now_us()
    batch = await store.batches.create_batch(
        NewBatch(
            id=ids.batch_id(),
            workspace_id=CALLER.workspace_id,
            created_at=now,
            expires_at=now + 1,
            archives_at=now + 2,
        ),
        [],
    )
    return await store.files.add_generated_file(new_file(), batch.seq, "output")


async def read(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_a_generated_file_is_sized_once_and_rendered() -> None:
    store = await open_store(MEMORY_URL)
    renderer = Renderer()
    service = FileService(store.files, renderer)
    record = await generated_file(store)

    listed = await service.list(CALLER, after=None, limit=10, order="desc", purpose=None)
    assert [(f.id, f.bytes, f.purpose) for f in listed.data] == [
        (record.id, len(RENDERED), "batch_output")
    ]
    assert (await service.retrieve(CALLER, record.id)).bytes == len(RENDERED)
    assert renderer.sized == [record.id], "computed once, then read from the store"

    content = await service.content(CALLER, record.id)
    assert content.size is None  # rendered: no length promised up front
    assert await read(content.chunks) == RENDERED


async def test_without_a_renderer_a_generated_file_has_no_content() -> None:
    store = await open_store(MEMORY_URL)
    service = FileService(store.files)
    record = await generated_file(store)
    with pytest.raises(ApiError) as missing:
        await service.content(CALLER, record.id)
    assert (missing.value.status, missing.value.param) == (404, "id")


async def test_a_download_cut_by_a_delete_breaks_off() -> None:
    store = await open_store(MEMORY_URL)
    service = FileService(store.files)

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 1000

    created = await service.upload(CALLER, {"purpose": "user_data"}, "x.bin", pieces())
    content = await service.content(CALLER, created.id)
    assert content.size == 3000
    first = await anext(content.chunks)
    await service.delete(CALLER, created.id)
    with pytest.raises(StoreError):
        await read(content.chunks)
    assert len(first) == 1000


async def test_the_sweep_deletes_expired_files_in_bounded_steps() -> None:
    store = await open_store(MEMORY_URL)
    now = now_us()
    for n in range(45):
        await store.files.create_file(new_file(expires_at=now - n), read_nothing())
    kept = await store.files.create_file(new_file(expires_at=now + 10**9), read_nothing())

    assert await purge_expired_files(store.sweeps, now) == 45
    page = await store.files.list_files(
        CALLER.workspace_id, purpose=None, after=None, limit=100, order="asc"
    )
    assert page is not None and [record.id for record in page.files] == [kept.id]


async def read_nothing() -> AsyncIterator[bytes]:
    for piece in ():
        yield piece
