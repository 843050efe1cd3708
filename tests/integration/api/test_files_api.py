"""OpenAI's Files API through the official ``openai`` SDK (strict response validation), in
process: upload (bytes, a path, an open file, an expiry), retrieve, list with its cursor both
ways, content byte for byte, delete, workspaces, and every refusal with OpenAI's ``param``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import httpx2
import openai
import pytest
from harness import sim_config
from inprocess import BASE_URL, InProcessServer, running_app

from batchyard import ids
from batchyard.store import open_store
from batchyard.store.records import NewFile
from batchyard.timeutil import MICROS_PER_SECOND, now_us

MIB = 1 << 20
THIRTY_DAYS = 30 * 24 * 3600
LINES = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'


def openai_sdk(server: InProcessServer, key: str) -> openai.AsyncOpenAI:
    """The official async SDK on the in-process app (built on httpx2, like ``anthropic``'s)."""
    return openai.AsyncOpenAI(
        base_url=f"{BASE_URL}/v1",
        api_key=key,
        http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=server.app)),
        max_retries=0,
        _strict_response_validation=True,
    )


@pytest.fixture
async def sdk(server: InProcessServer, api_key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai_sdk(server, api_key) as client:
        yield client


def multipart(*parts: tuple[str, str | None, bytes], boundary: str = "by-test") -> bytes:
    """A form body with the parts in this order, as ``(name, filename, value)``."""
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


FORM = {"content-type": "multipart/form-data; boundary=by-test"}


async def test_an_upload_is_a_file_object(sdk: openai.AsyncOpenAI) -> None:
    before = int(time.time())
    created = await sdk.files.create(file=("requests.jsonl", LINES), purpose="batch")

    assert created.id.startswith("file-")
    assert (created.object, created.bytes, created.filename) == (
        "file",
        len(LINES),
        "requests.jsonl",
    )
    assert (created.purpose, created.status, created.status_details) == ("batch", "processed", None)
    assert before <= created.created_at <= int(time.time())
    # A batch file expires after 30 days unless told otherwise, as OpenAI's do.
    assert created.expires_at == created.created_at + THIRTY_DAYS
    assert await sdk.files.retrieve(created.id) == created

    kept = await sdk.files.create(file=LINES, purpose="user_data")
    assert (kept.purpose, kept.expires_at, kept.bytes) == ("user_data", None, len(LINES))
    assert kept.filename  # the SDK names a bare bytes upload itself


async def test_an_upload_from_a_path_and_an_open_file(
    sdk: openai.AsyncOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "input.jsonl"
    path.write_bytes(LINES * 1000)
    from_path = await sdk.files.create(file=path, purpose="batch")
    with path.open("rb") as handle:
        from_handle = await sdk.files.create(file=handle, purpose="batch")
    for created in (from_path, from_handle):
        assert (created.filename, created.bytes) == ("input.jsonl", len(LINES) * 1000)
        assert (await sdk.files.content(created.id)).content == LINES * 1000


async def test_expires_after_sets_the_expiry(sdk: openai.AsyncOpenAI) -> None:
    created = await sdk.files.create(
        file=("short.jsonl", LINES),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert created.expires_at == created.created_at + 3600
    for seconds in (3599, THIRTY_DAYS + 1):
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.files.create(
                file=("x.jsonl", LINES),
                purpose="batch",
                expires_after={"anchor": "created_at", "seconds": seconds},
            )
        assert refused.value.param == "expires_after.seconds"


async def test_content_comes_back_byte_for_byte(sdk: openai.AsyncOpenAI) -> None:
    data = os.urandom(5 * MIB + 321)  # several stored chunks, every byte value
    created = await sdk.files.create(file=("blob.bin", data), purpose="user_data")
    assert created.bytes == len(data)

    content = await sdk.files.content(created.id)
    assert content.content == data
    assert content.response.headers["content-type"] == "application/octet-stream"
    assert content.response.headers["content-length"] == str(len(data))


async def test_lists_page_with_after_limit_order_and_purpose(sdk: openai.AsyncOpenAI) -> None:
    made = [
        await sdk.files.create(
            file=(f"f{n}.jsonl", LINES), purpose="user_data" if n % 2 else "batch"
        )
        for n in range(5)
    ]
    ids_oldest_first = [created.id for created in made]

    page = await sdk.files.list(limit=2)
    assert [f.id for f in page.data] == ids_oldest_first[::-1][:2]
    assert page.has_more is True
    raw = await sdk.files.with_raw_response.list(limit=2, order="asc")
    body = raw.http_response.json()
    assert (body["object"], body["first_id"], body["last_id"], body["has_more"]) == (
        "list",
        ids_oldest_first[0],
        ids_oldest_first[1],
        True,
    )
    after = await sdk.files.list(limit=2, order="asc", after=ids_oldest_first[1])
    assert [f.id for f in after.data] == ids_oldest_first[2:4]

    # The SDK's auto-pagination follows ``after`` to the end, both ways.
    assert [f.id async for f in sdk.files.list(limit=2)] == ids_oldest_first[::-1]
    assert [f.id async for f in sdk.files.list(limit=2, order="asc")] == ids_oldest_first
    assert [f.id async for f in sdk.files.list(purpose="batch", limit=1, order="asc")] == [
        ids_oldest_first[0],
        ids_oldest_first[2],
        ids_oldest_first[4],
    ]
    default = await sdk.files.list()
    assert ([f.id for f in default.data], default.has_more) == (ids_oldest_first[::-1], False)

    for params, param in [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"order": "newest"}, "order"),
        ({"after": ids.file_id()}, "after"),
    ]:
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.files.list(**params)  # type: ignore[arg-type]
        assert refused.value.param == param


async def test_delete_then_404_everywhere(sdk: openai.AsyncOpenAI) -> None:
    created = await sdk.files.create(file=("gone.jsonl", LINES), purpose="batch")
    deleted = await sdk.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")

    for call in (sdk.files.retrieve, sdk.files.content, sdk.files.delete):
        with pytest.raises(openai.NotFoundError) as missing:
            await call(created.id)
        error = missing.value
        assert isinstance(error.body, dict)
        assert (error.body["message"], error.param, error.type) == (
            f"No such File object: {created.id}",
            "id",
            "invalid_request_error",
        )
    assert [f.id async for f in sdk.files.list()] == []


async def test_another_workspace_sees_nothing(
    server: InProcessServer, sdk: openai.AsyncOpenAI
) -> None:
    created = await sdk.files.create(file=("mine.jsonl", LINES), purpose="batch")
    async with openai_sdk(server, await server.add_key(f"other-{uuid.uuid4()}")) as stranger:
        for call in (stranger.files.retrieve, stranger.files.content, stranger.files.delete):
            with pytest.raises(openai.NotFoundError):
                await call(created.id)
        assert (await stranger.files.list()).data == []
        with pytest.raises(openai.BadRequestError):  # not even as a cursor
            await stranger.files.list(after=created.id)
    assert (await sdk.files.retrieve(created.id)).id == created.id


async def test_an_expired_file_reads_as_deleted(server: InProcessServer, api_key: str) -> None:
    """Past ``expires_at`` a file is a 404 and absent from lists, before any sweep."""
    async with openai_sdk(server, api_key) as sdk:
        live = await sdk.files.create(file=("live.jsonl", LINES), purpose="batch")
        workspace_id = await _workspace_of(server, api_key)
        store = await open_store(server.db_url)
        try:
            expired = NewFile(
                id=ids.file_id(),
                workspace_id=workspace_id,
                filename="old.jsonl",
                purpose="batch",
                created_at=now_us() - 2 * 3600 * MICROS_PER_SECOND,
                expires_at=now_us() - MICROS_PER_SECOND,
            )
            await store.files.create_file(expired, _pieces(LINES))
        finally:
            await store.close()
        with pytest.raises(openai.NotFoundError):
            await sdk.files.retrieve(expired.id)
        with pytest.raises(openai.NotFoundError):
            await sdk.files.content(expired.id)
        # The expired file is older, so it is where the list ends: the page is filled
        # past it and says there is nothing more.
        page = await sdk.files.list(limit=1)
        assert ([f.id for f in page.data], page.has_more) == ([live.id], True)
        assert [f.id async for f in sdk.files.list(limit=1)] == [live.id]


async def _workspace_of(server: InProcessServer, key: str) -> int:
    workspace_id = await server.app.state.context.keys.workspace_for_key(ids.hash_api_key(key))
    assert workspace_id is not None
    return int(workspace_id)


async def _pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_bad_purpose_names_purpose(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.files.create(file=("x.jsonl", LINES), purpose="fine-tune")
    assert refused.value.param == "purpose"
    assert "'batch'" in refused.value.message
    assert [f.id async for f in sdk.files.list()] == []


async def test_refused_forms_name_their_field(client: httpx.AsyncClient) -> None:
    cases = [
        (multipart(("purpose", None, b"batch")), "file"),
        (multipart(("purpose", None, b"batch"), ("file", None, LINES)), "file"),
        (multipart(("file", "a.jsonl", LINES)), "purpose"),
        (
            multipart(
                ("purpose", None, b"batch"), ("file", "a.jsonl", LINES), ("color", None, b"red")
            ),
            "color",
        ),
        (
            multipart(("purpose", None, b"batch"), ("file", "a", LINES), ("file", "b", LINES)),
            "file",
        ),
    ]
    for body, param in cases:
        response = await client.post("/v1/files", content=body, headers=FORM)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param, response.text
    not_a_form = await client.post("/v1/files", json={"purpose": "batch"})
    assert not_a_form.status_code == 400
    cut = multipart(("purpose", None, b"batch"), ("file", "a.jsonl", LINES))[:-20]
    truncated = await client.post("/v1/files", content=cut, headers=FORM)
    assert truncated.status_code == 400, truncated.text
    assert (await client.get("/v1/files")).json()["data"] == []


async def test_the_file_may_come_before_the_fields(client: httpx.AsyncClient) -> None:
    """As the Node SDK sends it: ``file`` first, then ``purpose``."""
    body = multipart(
        ("file", "first.jsonl", LINES),
        ("purpose", None, b"batch"),
        ("expires_after[anchor]", None, b"created_at"),
        ("expires_after[seconds]", None, b"7200"),
    )
    response = await client.post("/v1/files", content=body, headers=FORM)
    assert response.status_code == 200, response.text
    created = response.json()
    assert (created["filename"], created["bytes"]) == ("first.jsonl", len(LINES))
    assert created["expires_at"] == created["created_at"] + 7200


@pytest.fixture
async def small_server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    async with running_app(tmp_path / "small", sim_config(max_file_bytes=MIB)) as started:
        yield started


async def test_an_oversized_upload_is_413_and_stores_nothing(small_server: InProcessServer) -> None:
    key = await small_server.add_key("small")
    async with openai_sdk(small_server, key) as sdk:
        exact = await sdk.files.create(file=("exact.bin", b"x" * MIB), purpose="user_data")
        assert exact.bytes == MIB
        with pytest.raises(openai.APIStatusError) as refused:
            await sdk.files.create(file=("big.bin", b"x" * (MIB + 1)), purpose="user_data")
        assert refused.value.status_code == 413
        assert refused.value.param == "file"

        # Without a Content-Length (a chunked body), the cap holds while the part streams.
        async def body() -> AsyncIterator[bytes]:
            head = multipart(("purpose", None, b"batch"), ("file", "big.bin", b""))
            yield head[: -len(b"\r\n--by-test--\r\n")]
            for _ in range(4):
                yield b"y" * (MIB // 2)

        async with small_server.client(key) as http:
            response = await http.post("/v1/files", content=body(), headers=FORM)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["param"] == "file"
        assert [f.id async for f in sdk.files.list()] == [exact.id]
