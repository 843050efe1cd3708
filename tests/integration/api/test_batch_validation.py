"""The Message Batches HTTP contract at its edges, against the real app in-process.

Every envelope rule of ``POST /v1/messages/batches`` (docs/protocol.md §2.1, §5.1 and §5.4) gives
a 400 whose message starts with the JSON path of the problem, in the error envelope of
section 6.1, with the ``request-id`` header echoing the body, and creates nothing. Also
covered: auth (1.2), ``?beta=true`` (1.3), empty cancel/delete bodies (1.4), list paging
arguments (2.3), unknown ids, results before the end and delete while running (section 12),
unknown routes and methods. No response anywhere may be a 5xx: the SDKs would retry it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import sim_config
from inprocess import InProcessServer, running_app

BATCHES = "/v1/messages/batches"
PARAMS = {"model": "sim", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
SLOW_PARAMS = {**PARAMS, "model": "sim-slow"}

#: An unhandled error would be a 500 and log a traceback: none in any test here.
pytestmark = pytest.mark.usefixtures("no_errors_logged")


def item(custom_id: Any = "r", params: Any = PARAMS, **extra: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "params": params, **extra}


def valid_items(n: int = 3) -> list[dict[str, Any]]:
    return [item(f"ok-{i}") for i in range(n)]


async def _no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (
        response.request.method,
        response.request.url,
        response.status_code,
        await response.aread(),
    )


def client_for(server: InProcessServer, key: str | None, **headers: str) -> httpx.AsyncClient:
    return server.client(key, headers=headers, event_hooks={"response": [_no_server_error]})


@pytest.fixture
async def client(server: InProcessServer, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(server, api_key) as http:
        yield http


@pytest.fixture
async def anonymous(server: InProcessServer) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(server, None) as http:
        yield http


@pytest.fixture
async def limits_server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    """A server with tiny limits: 5 requests per batch, 2000-byte bodies."""
    config = sim_config(max_requests_per_batch=5, max_body_bytes=2000)
    async with running_app(tmp_path / "limits", config) as server:
        yield server


@pytest.fixture
async def limits_client(
    limits_server: InProcessServer, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    key = await limits_server.add_key(f"ws-{request.node.name}"[:180])
    async with client_for(limits_server, key) as http:
        yield http


# ------------------------------------------------------------------------------ assertions


def assert_error(
    response: httpx.Response, status: int, error_type: str, message_start: str = ""
) -> str:
    """The spec 6.1 envelope with ``request-id`` echoed; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}, body
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}, body
    assert body["error"]["type"] == error_type, body
    assert body["request_id"].startswith("req_")
    assert response.headers["request-id"] == body["request_id"]
    message: str = body["error"]["message"]
    assert message.startswith(message_start), message
    return message


async def assert_nothing_created(client: httpx.AsyncClient) -> None:
    listed = await client.get(BATCHES)
    assert listed.status_code == 200
    assert listed.json() == {"data": [], "has_more": False, "first_id": None, "last_id": None}


async def create(
    client: httpx.AsyncClient, items: list[dict[str, Any]] | None = None, path: str = BATCHES
) -> dict[str, Any]:
    response = await client.post(path, json={"requests": items or valid_items()})
    assert response.status_code == 200, response.text
    batch: dict[str, Any] = response.json()
    assert batch["processing_status"] == "in_progress"
    return batch


async def wait_ended(
    client: httpx.AsyncClient, batch_id: str, timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch: dict[str, Any] = (await client.get(f"{BATCHES}/{batch_id}")).json()
        if batch["processing_status"] == "ended":
            return batch
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------ create: 400s


def body_of(value: Any) -> bytes:
    return json.dumps(value).encode()


OK3 = valid_items(3)

REJECTED_BODIES = [
    pytest.param(b'{"requests": [', "Invalid JSON", id="malformed-json"),
    pytest.param(b"not json at all", "Invalid JSON", id="not-json"),
    pytest.param(body_of({"requests": OK3}) + b" x", "Invalid JSON", id="trailing-garbage"),
    pytest.param(b"", "requests: Field required", id="empty-body"),
    pytest.param(body_of({}), "requests: Field required", id="missing-requests"),
    pytest.param(
        body_of({"requests": {"custom_id": "a", "params": PARAMS}}),
        "requests: Expected `array`",
        id="requests-object",
    ),
    pytest.param(body_of({"requests": "abc"}), "requests: Expected `array`", id="requests-string"),
    pytest.param(body_of({"requests": None}), "requests: Expected `array`", id="requests-null"),
    pytest.param(
        body_of({"requests": []}),
        "requests: List should have at least 1 item after validation, not 0",
        id="requests-empty",
    ),
    pytest.param(body_of({"requests": [*OK3, 42]}), "requests.3: Expected `object`", id="item-int"),
    pytest.param(
        body_of({"requests": [*OK3, "x"]}), "requests.3: Expected `object`", id="item-string"
    ),
    pytest.param(
        body_of({"requests": [*OK3, [item()]]}), "requests.3: Expected `object`", id="item-array"
    ),
    pytest.param(
        body_of({"requests": [*OK3, {"params": PARAMS}]}),
        "requests.3.custom_id: Field required",
        id="missing-custom_id",
    ),
    pytest.param(
        body_of({"requests": [*OK3, {"custom_id": "x"}]}),
        "requests.3.params: Field required",
        id="missing-params",
    ),
    pytest.param(
        body_of({"requests": [item(foo=1)]}),
        "requests.0.foo: Extra inputs are not permitted",
        id="unknown-item-key",
    ),
    pytest.param(
        body_of({"requests": OK3, "model": "sim"}),
        "model: Extra inputs are not permitted",
        id="unknown-top-level-key",
    ),
    pytest.param(
        body_of({"requests": [*OK3, item(7)]}),
        "requests.3.custom_id: Expected `str`, got `int`",
        id="custom_id-int",
    ),
    pytest.param(
        body_of({"requests": [*OK3, item(None)]}),
        "requests.3.custom_id: Expected `str`, got `null`",
        id="custom_id-null",
    ),
    pytest.param(
        body_of({"requests": [*OK3, item("")]}),
        "requests.3.custom_id: String should have at least 1 character",
        id="custom_id-empty",
    ),
    pytest.param(
        body_of({"requests": [*OK3, item("a" * 65)]}),
        "requests.3.custom_id: String should have at most 64 characters",
        id="custom_id-65-chars",
    ),
    *[
        pytest.param(
            body_of({"requests": [*OK3, item(bad)]}),
            "requests.3.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
            id=f"custom_id-{name}",
        )
        for name, bad in [
            ("space", "a b"),
            ("dot", "a.b"),
            ("unicode", "caf\u00e9"),
            ("newline", "ab\n"),
            ("slash", "a/b"),
        ]
    ],
    pytest.param(
        body_of({"requests": [*OK3, item("ok-1")]}),
        "requests.3.custom_id: duplicate custom_id 'ok-1' (first used at requests.1)",
        id="custom_id-duplicate",
    ),
    *[
        pytest.param(
            body_of({"requests": [*OK3, item("x", value)]}),
            "requests.3.params: Input should be a valid dictionary",
            id=f"params-{name}",
        )
        for name, value in [
            ("string", "params"),
            ("array", [PARAMS]),
            ("null", None),
            ("number", 1),
        ]
    ],
]


@pytest.mark.parametrize(("raw", "message_start"), REJECTED_BODIES)
async def test_create_rejects_envelope_problems_and_creates_nothing(
    client: httpx.AsyncClient, raw: bytes, message_start: str
) -> None:
    response = await client.post(BATCHES, content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error", message_start)
    await assert_nothing_created(client)


@pytest.mark.parametrize(
    "raw",
    [b"[]", b'[{"requests": []}]', b'"requests"', b"null", b"17"],
    ids=["array", "array-of-object", "string", "null", "number"],
)
async def test_create_body_that_is_json_but_not_an_object(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    """Valid JSON of the wrong shape is a 400 that says so, not "Invalid JSON"."""
    message = assert_error(await client.post(BATCHES, content=raw), 400, "invalid_request_error")
    assert not message.startswith("Invalid JSON"), message
    assert "object" in message
    await assert_nothing_created(client)


async def test_duplicate_custom_id_message_names_both_indices(client: httpx.AsyncClient) -> None:
    items = [item("a"), item("b"), item("a")]
    message = assert_error(
        await client.post(BATCHES, json={"requests": items}),
        400,
        "invalid_request_error",
        "requests.2.custom_id: ",
    )
    assert "requests.0" in message
    await assert_nothing_created(client)


async def test_valid_batch_after_an_invalid_one_is_whole_and_alone(
    client: httpx.AsyncClient,
) -> None:
    bad = [*valid_items(4), item("ok-0")]
    assert_error(await client.post(BATCHES, json={"requests": bad}), 400, "invalid_request_error")
    batch = await create(client, valid_items(4))
    assert batch["request_counts"]["processing"] == 4
    listed = (await client.get(BATCHES)).json()
    assert [b["id"] for b in listed["data"]] == [batch["id"]]
    ended = await wait_ended(client, batch["id"])
    assert ended["request_counts"]["succeeded"] == 4
    lines = (await client.get(f"{BATCHES}/{batch['id']}/results")).text.splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in lines) == [f"ok-{i}" for i in range(4)]


async def test_create_does_not_require_a_json_content_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        BATCHES,
        content=body_of({"requests": valid_items(1)}),
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 200, response.text


# ------------------------------------------------------------------------------ limits


async def test_max_requests_per_batch(limits_client: httpx.AsyncClient) -> None:
    six = [item(f"r{i}") for i in range(6)]
    assert_error(
        await limits_client.post(BATCHES, json={"requests": six}),
        400,
        "invalid_request_error",
        "requests: List should have at most 5 items after validation, not 6",
    )
    await assert_nothing_created(limits_client)
    batch = await create(limits_client, six[:5])
    assert batch["request_counts"]["processing"] == 5


def _padded_body(size: int) -> bytes:
    """A valid create body of exactly ``size`` bytes (JSON whitespace as padding)."""
    raw = body_of({"requests": [item("pad")]})
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


async def test_body_at_the_limit_is_accepted(limits_client: httpx.AsyncClient) -> None:
    raw = _padded_body(2000)
    assert len(raw) == 2000
    assert (await limits_client.post(BATCHES, content=raw)).status_code == 200


async def test_body_over_the_limit_with_content_length_is_413(
    limits_client: httpx.AsyncClient,
) -> None:
    raw = _padded_body(2001)
    response = await limits_client.post(BATCHES, content=raw)
    assert response.request.headers["content-length"] == "2001"
    assert_error(response, 413, "request_too_large")
    await assert_nothing_created(limits_client)


async def test_body_over_the_limit_without_content_length_is_413(
    limits_client: httpx.AsyncClient,
) -> None:
    """Chunked upload: the size is only known while reading, and is still enforced."""
    raw = _padded_body(5000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 700):
            yield raw[start : start + 700]

    response = await limits_client.post(BATCHES, content=chunks())
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "request_too_large")
    await assert_nothing_created(limits_client)


async def test_body_just_under_the_limit_without_content_length_is_accepted(
    limits_client: httpx.AsyncClient,
) -> None:
    raw = _padded_body(2000)

    async def halves() -> AsyncIterator[bytes]:
        yield raw[:1000]
        yield raw[1000:]

    response = await limits_client.post(BATCHES, content=halves())
    assert "content-length" not in response.request.headers
    assert response.status_code == 200, response.text


# ------------------------------------------------------------------------------ auth

ROUTES = [
    ("POST", BATCHES),
    ("GET", BATCHES),
    ("GET", f"{BATCHES}/msgbatch_x"),
    ("POST", f"{BATCHES}/msgbatch_x/cancel"),
    ("DELETE", f"{BATCHES}/msgbatch_x"),
    ("GET", f"{BATCHES}/msgbatch_x/results"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_no_key_is_401_on_every_route(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    body = body_of({"requests": valid_items(1)}) if method == "POST" else None
    assert_error(await anonymous.request(method, path, content=body), 401, "authentication_error")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-api-key": "sk-by-wrong"}, "invalid x-api-key"),
        ({"authorization": "Bearer sk-by-wrong"}, "Invalid bearer token"),
        ({"x-api-key": ""}, "x-api-key header or Authorization: Bearer token is required"),
        ({"authorization": "Bearer"}, "x-api-key header or Authorization: Bearer token is"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "x-api-key header or Authorization: Bearer"),
    ],
    ids=["x-api-key", "bearer", "empty-x-api-key", "empty-bearer", "basic"],
)
async def test_wrong_key_is_401(
    anonymous: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    """Worded as the API words it for the header that carried the key (protocol.md §6.4)."""
    response = await anonymous.get(BATCHES, headers=headers)
    assert_error(response, 401, "authentication_error", message)


async def test_auth_is_checked_before_the_body(anonymous: httpx.AsyncClient) -> None:
    assert_error(await anonymous.post(BATCHES, content=b"{nonsense"), 401, "authentication_error")


async def test_x_api_key_and_bearer_reach_the_same_workspace(
    anonymous: httpx.AsyncClient, api_key: str
) -> None:
    made = await anonymous.post(
        BATCHES, json={"requests": valid_items(1)}, headers={"x-api-key": api_key}
    )
    assert made.status_code == 200
    for scheme in ("Bearer", "bearer"):
        seen = await anonymous.get(
            f"{BATCHES}/{made.json()['id']}", headers={"authorization": f"{scheme} {api_key}"}
        )
        assert seen.status_code == 200
        assert seen.json()["id"] == made.json()["id"]


@pytest.mark.parametrize("version", ["2023-06-01", "2026-10-21", "1999-01-01", "anything", None])
async def test_any_anthropic_version_is_accepted(
    server: InProcessServer, api_key: str, version: str | None
) -> None:
    headers = {"x-api-key": api_key}
    if version is not None:
        headers["anthropic-version"] = version
    async with httpx.AsyncClient(
        transport=server.transport, base_url=server.base_url, headers=headers
    ) as http:
        assert "anthropic-version" not in http.headers or version is not None
        assert (await http.get(BATCHES)).status_code == 200
        assert (await http.post(BATCHES, json={"requests": valid_items(1)})).status_code == 200


# ------------------------------------------------------------------------------ routing


async def test_beta_query_is_accepted_on_every_route(client: httpx.AsyncClient) -> None:
    beta = {"anthropic-beta": "message-batches-2024-09-24"}
    batch = await create(client, valid_items(2), path=f"{BATCHES}?beta=true")
    batch_path = f"{BATCHES}/{batch['id']}"
    listed = await client.get(f"{BATCHES}?beta=true&limit=20", headers=beta)
    assert [b["id"] for b in listed.json()["data"]] == [batch["id"]]
    retrieved = await client.get(f"{batch_path}?beta=true", headers=beta)
    assert retrieved.json()["id"] == batch["id"]
    await wait_ended(client, batch["id"])
    results = await client.get(f"{batch_path}/results?beta=true", headers=beta)
    assert results.status_code == 200 and len(results.text.splitlines()) == 2
    canceled = await client.post(f"{batch_path}/cancel?beta=true", headers=beta)
    assert canceled.status_code == 200
    deleted = await client.delete(f"{batch_path}?beta=true", headers=beta)
    assert deleted.json() == {"id": batch["id"], "type": "message_batch_deleted"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/v1/nope"),
        ("POST", "/v2/messages/batches"),
        ("GET", f"{BATCHES}/msgbatch_x/unknown"),
        ("POST", f"{BATCHES}/msgbatch_x/retry"),
        ("GET", f"{BATCHES}/msgbatch_x/results/extra"),
    ],
)
async def test_unknown_route_is_404_envelope(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_error(await client.request(method, path), 404, "not_found_error")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", BATCHES),
        ("DELETE", BATCHES),
        ("PATCH", f"{BATCHES}/msgbatch_x"),
        ("POST", f"{BATCHES}/msgbatch_x"),
        ("GET", f"{BATCHES}/msgbatch_x/cancel"),
        ("DELETE", f"{BATCHES}/msgbatch_x/cancel"),
        ("POST", f"{BATCHES}/msgbatch_x/results"),
    ],
)
async def test_wrong_method_is_405_envelope(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_error(await client.request(method, path), 405, "invalid_request_error")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", BATCHES, {"GET", "POST"}),
        ("POST", f"{BATCHES}/msgbatch_x", {"GET", "DELETE"}),
        ("GET", f"{BATCHES}/msgbatch_x/cancel", {"POST"}),
    ],
)
async def test_wrong_method_405_lists_the_allowed_methods(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    """RFC 9110 15.5.6: a 405 response MUST carry an ``Allow`` header."""
    response = await client.request(method, path)
    assert response.status_code == 405
    listed = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
    assert allowed <= listed, response.headers
    assert method not in listed


# ------------------------------------------------------------------------------ list args


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "abc", "1.5", "20x"])
async def test_list_limit_out_of_range_or_not_an_integer(
    client: httpx.AsyncClient, limit: str
) -> None:
    assert_error(
        await client.get(BATCHES, params={"limit": limit}), 400, "invalid_request_error", "limit: "
    )


@pytest.mark.parametrize("limit", ["1", "1000"])
async def test_list_limit_bounds_are_inclusive(client: httpx.AsyncClient, limit: str) -> None:
    await create(client, valid_items(1))
    listed = await client.get(BATCHES, params={"limit": limit})
    assert listed.status_code == 200
    assert len(listed.json()["data"]) == 1


async def test_list_with_both_cursors_is_400(client: httpx.AsyncClient) -> None:
    first, second = await create(client), await create(client)
    assert_error(
        await client.get(BATCHES, params={"after_id": first["id"], "before_id": second["id"]}),
        400,
        "invalid_request_error",
    )


@pytest.mark.parametrize("cursor", ["after_id", "before_id"])
async def test_list_unknown_cursor_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    await create(client)
    assert_error(
        await client.get(BATCHES, params={cursor: "msgbatch_01nope"}),
        400,
        "invalid_request_error",
        f"{cursor}: ",
    )


@pytest.mark.parametrize("cursor", ["after_id", "before_id"])
async def test_list_cursor_from_another_workspace_is_400(
    server: InProcessServer, client: httpx.AsyncClient, cursor: str
) -> None:
    async with client_for(server, await server.add_key(f"other-{cursor}")) as other:
        foreign = await create(other)
    assert_error(
        await client.get(BATCHES, params={cursor: foreign["id"]}), 400, "invalid_request_error"
    )


# ------------------------------------------------------------------------------ unknown ids


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("POST", "/cancel"), ("DELETE", ""), ("GET", "/results")]
)
async def test_unknown_batch_id_is_404(client: httpx.AsyncClient, method: str, suffix: str) -> None:
    for batch_id in ("msgbatch_01DoesNotExist000000000", "garbage"):
        assert_error(
            await client.request(method, f"{BATCHES}/{batch_id}{suffix}"), 404, "not_found_error"
        )


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("POST", "/cancel"), ("DELETE", ""), ("GET", "/results")]
)
async def test_batch_of_another_workspace_is_404(
    server: InProcessServer, client: httpx.AsyncClient, method: str, suffix: str
) -> None:
    async with client_for(server, await server.add_key(f"owner-{method}{suffix}")) as owner:
        batch = await create(owner, valid_items(1))
        await wait_ended(owner, batch["id"])
        assert_error(
            await client.request(method, f"{BATCHES}/{batch['id']}{suffix}"), 404, "not_found_error"
        )
        seen = (await owner.get(f"{BATCHES}/{batch['id']}")).json()
        assert seen["processing_status"] == "ended"


# ------------------------------------------------------------------------------ lifecycle


async def test_results_before_the_batch_ended_is_400(client: httpx.AsyncClient) -> None:
    batch = await create(client, [item(f"s{i}", SLOW_PARAMS) for i in range(10)])
    assert_error(await client.get(f"{BATCHES}/{batch['id']}/results"), 400, "invalid_request_error")
    await client.post(f"{BATCHES}/{batch['id']}/cancel")
    await wait_ended(client, batch["id"])
    assert (await client.get(f"{BATCHES}/{batch['id']}/results")).status_code == 200


async def test_delete_while_in_progress_is_400_not_409(client: httpx.AsyncClient) -> None:
    batch = await create(client, [item(f"s{i}", SLOW_PARAMS) for i in range(10)])
    assert_error(await client.delete(f"{BATCHES}/{batch['id']}"), 400, "invalid_request_error")
    assert (await client.get(f"{BATCHES}/{batch['id']}")).status_code == 200
    await client.post(f"{BATCHES}/{batch['id']}/cancel")
    await wait_ended(client, batch["id"])
    assert (await client.delete(f"{BATCHES}/{batch['id']}")).status_code == 200
    for method, suffix in [("GET", ""), ("GET", "/results"), ("POST", "/cancel"), ("DELETE", "")]:
        assert_error(
            await client.request(method, f"{BATCHES}/{batch['id']}{suffix}"), 404, "not_found_error"
        )
    await assert_nothing_created(client)


async def test_cancel_twice_is_200_and_idempotent(client: httpx.AsyncClient) -> None:
    batch = await create(client, [item(f"s{i}", SLOW_PARAMS) for i in range(10)])
    first = await client.post(f"{BATCHES}/{batch['id']}/cancel")
    second = await client.post(f"{BATCHES}/{batch['id']}/cancel")
    assert first.status_code == second.status_code == 200
    one, two = first.json(), second.json()
    assert one["processing_status"] in ("canceling", "ended")
    assert two["processing_status"] in ("canceling", "ended")
    assert one["cancel_initiated_at"] is not None
    assert two["cancel_initiated_at"] == one["cancel_initiated_at"]
    ended = await wait_ended(client, batch["id"])
    third = await client.post(f"{BATCHES}/{batch['id']}/cancel")
    assert third.status_code == 200
    assert third.json() == ended
    counts = ended["request_counts"]
    assert sum(counts.values()) == 10
    assert counts["processing"] == 0


async def test_cancel_of_an_ended_batch_changes_nothing(client: httpx.AsyncClient) -> None:
    batch = await create(client, valid_items(2))
    ended = await wait_ended(client, batch["id"])
    again = await client.post(f"{BATCHES}/{batch['id']}/cancel")
    assert again.status_code == 200
    assert again.json() == ended
    assert ended["cancel_initiated_at"] is None


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/json"}],
    ids=["no-content-type", "json-content-type"],
)
async def test_cancel_and_delete_accept_an_empty_body(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    batch = await create(client, valid_items(1))
    canceled = await client.post(f"{BATCHES}/{batch['id']}/cancel", content=b"", headers=headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["id"] == batch["id"]
    await wait_ended(client, batch["id"])
    deleted = await client.delete(f"{BATCHES}/{batch['id']}", headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.headers["content-type"].startswith("application/json")
    assert deleted.json() == {"id": batch["id"], "type": "message_batch_deleted"}


async def test_every_success_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    batch = await create(client, valid_items(1))
    await wait_ended(client, batch["id"])
    responses = [
        await client.get(BATCHES),
        await client.get(f"{BATCHES}/{batch['id']}"),
        await client.get(f"{BATCHES}/{batch['id']}/results"),
        await client.post(f"{BATCHES}/{batch['id']}/cancel"),
        await client.delete(f"{BATCHES}/{batch['id']}"),
    ]
    request_ids = [r.headers["request-id"] for r in responses]
    assert all(rid.startswith("req_") for rid in request_ids)
    assert len(set(request_ids)) == len(request_ids)
