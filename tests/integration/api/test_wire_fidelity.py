"""Wire fidelity (issue 7): batchyard takes what the official SDK's types take and refuses
what the API refuses, through the latest SDK (2.x), sync and in a batch.

Each row of the issue's table is one :class:`Row`: a Messages body and what becomes of it on
two simulated models. ``sim`` is text-only, so a valid option it cannot honour is refused
naming the field; ``sim-lenient`` sets ``accept_unsupported = true`` (a load test replaying
real bodies), so a body that passes validation succeeds there. A malformed body fails
validation, before any engine, with the same message on both.

Sync rows go through ``client.messages.create`` (``client.beta.messages.create`` with the
row's betas); a key the method has a keyword for travels as that keyword, any other through
``extra_body``. Batch rows go through ``client.messages.batches.create`` in one batch, read
back with ``client.messages.batches.results``; the beta rows in a second batch made with
``client.beta.messages.batches.create`` and their betas (the batch's ``anthropic-beta``
governs how its requests are checked). The table itself is in tests/wire_rows.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import pytest
import pytest_asyncio
from anthropic.types.messages import MessageBatchIndividualResponse
from harness import sim_config
from inprocess import InProcessServer, running_app
from wire_rows import LENIENT, MODELS, PLAIN, ROWS, USER, Names, Row, call_args

CONFIG = sim_config(
    sim_latency_ms=0,
    extra_models=(
        "\n[[models]]\n"
        f'name = "{LENIENT}"\n'
        'engine = "simulated"\n'
        "latency_ms = 0\n"
        "accept_unsupported = true\n"
    ),
)


CASES = [(row, model) for row in ROWS for model in MODELS]
#: Every beta any row names: a batch carries one ``anthropic-beta`` for all its requests.
ALL_BETAS = sorted({beta for row in ROWS.values() for beta in row.betas})


def custom_id(row: str, model: str) -> str:
    return f"{row}--{model}"


def check_error(outcome: str | Names, error_type: str, message: str) -> None:
    assert error_type == "invalid_request_error", (error_type, message)
    if isinstance(outcome, Names):
        assert outcome.matches(message), message
    else:
        assert message == outcome


# ------------------------------------------------------------------------------ fixtures


#: One app for the module; every test runs in the module's loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Wire:
    server: InProcessServer
    key: str
    sdk: anthropic.AsyncAnthropic
    results: dict[str, MessageBatchIndividualResponse] = field(default_factory=dict)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def wire(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wire]:
    workdir: Path = tmp_path_factory.mktemp("wire-fidelity")
    async with running_app(workdir, CONFIG) as server:
        key = await server.add_key("ws-wire-fidelity")
        async with server.sdk(api_key=key, max_retries=0, _strict_response_validation=True) as sdk:
            yield Wire(server, key, sdk)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def batch_results(wire: Wire) -> dict[str, Any]:
    """Every row on both models, in two batches created through the SDK: the rows without
    betas through ``messages.batches``, the others through ``beta.messages.batches`` with
    their betas (the batch's ``anthropic-beta`` governs how its requests are checked)."""
    plain = [(row, model) for row, model in CASES if not ROWS[row].betas]
    beta = [(row, model) for row, model in CASES if ROWS[row].betas]
    results = await _run_batch(wire, wire.sdk.messages.batches, plain, {})
    results |= await _run_batch(wire, wire.sdk.beta.messages.batches, beta, {"betas": ALL_BETAS})
    assert len(results) == len(CASES)
    return results


async def _run_batch(
    wire: Wire, batches: Any, cases: list[tuple[str, str]], options: dict[str, Any]
) -> dict[str, Any]:
    requests: list[Any] = [
        {"custom_id": custom_id(row, model), "params": ROWS[row].params(model)}
        for row, model in cases
    ]
    batch = await batches.create(requests=requests, **options)
    deadline = time.monotonic() + 30
    while batch.processing_status != "ended":
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.02)
        batch = await batches.retrieve(batch.id, **options)
    return {result.custom_id: result async for result in await batches.results(batch.id, **options)}


async def create(sdk: anthropic.AsyncAnthropic, row: Row, model: str) -> Any:
    """``messages.create`` (``beta.messages.create`` with betas)."""
    method: Any = sdk.beta.messages.create if row.betas else sdk.messages.create
    return await method(**call_args(method, row, model))


# ------------------------------------------------------------------------------ the table


@pytest.mark.parametrize(("row", "model"), CASES)
async def test_row_sync(wire: Wire, row: str, model: str) -> None:
    """The SDK's sync call answers as the row says: a message, or ``BadRequestError`` (400)
    with the row's message."""
    expected = ROWS[row].expected(model)
    if expected is None:
        message = await create(wire.sdk, ROWS[row], model)
        assert message.type == "message" and message.model == model
        assert message.content and message.content[0].type == "text"
        return
    with pytest.raises(anthropic.BadRequestError) as caught:
        await create(wire.sdk, ROWS[row], model)
    assert caught.value.status_code == 400
    body: Any = caught.value.body
    check_error(expected, body["error"]["type"], body["error"]["message"])
    assert body["request_id"] == caught.value.request_id


@pytest.mark.parametrize(("row", "model"), CASES)
async def test_row_in_a_batch(batch_results: dict[str, Any], row: str, model: str) -> None:
    """The same body in a batch: ``succeeded``, or ``errored`` with the sync call's message."""
    expected = ROWS[row].expected(model)
    result = batch_results[custom_id(row, model)].result
    if expected is None:
        assert result.type == "succeeded", result
        assert result.message.model == model
        assert result.message.usage.service_tier == "batch"
        return
    assert result.type == "errored", result
    check_error(expected, result.error.error.type, result.error.error.message)


# ------------------------------------------------------------------------------ sync only


async def test_max_tokens_zero_is_a_sync_cache_warm_with_no_content(wire: Wire) -> None:
    """``max_tokens: 0`` (cache pre-warming) is taken on the sync route: an answer with no
    content block and no output token (a batch refuses it: see test_params_results)."""
    message = await wire.sdk.messages.create(model=PLAIN, max_tokens=0, messages=USER)  # type: ignore[arg-type]
    assert message.content == []
    assert message.usage.output_tokens == 0
    assert message.usage.input_tokens > 0
    assert message.stop_reason == "max_tokens"


async def test_streamed_usage_has_every_key_the_plain_answer_has(wire: Wire) -> None:
    """The SDK builds the final streamed message from ``message_start``: its usage must carry
    the cache counts and ``service_tier``, not leave them ``None``."""
    plain = await wire.sdk.messages.create(model=PLAIN, max_tokens=8, messages=USER)  # type: ignore[arg-type]
    async with wire.sdk.messages.stream(model=PLAIN, max_tokens=8, messages=USER) as stream:  # type: ignore[arg-type]
        events = [event async for event in stream]
        streamed = await stream.get_final_message()
    start = next(event for event in events if event.type == "message_start")
    for usage in (start.message.usage, streamed.usage):
        assert usage.cache_creation_input_tokens == 0
        assert usage.cache_read_input_tokens == 0
        assert usage.service_tier == "standard"
    present = {key for key, value in plain.usage.model_dump().items() if value is not None}
    assert {key for key, value in streamed.usage.model_dump().items() if value is not None} == (
        present
    )
    assert {"cache_creation_input_tokens", "cache_read_input_tokens", "service_tier"} <= present
    assert streamed.usage == plain.usage


async def test_a_wrong_bearer_token_is_a_401_that_mentions_the_bearer_token(wire: Wire) -> None:
    """``auth_token=`` sends ``Authorization: Bearer``; a wrong one is a 401 saying what was
    wrong (the header that carried it)."""
    async with wire.server.sdk(auth_token="sk-by-not-a-key", max_retries=0) as sdk:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await sdk.messages.create(model=PLAIN, max_tokens=8, messages=USER)  # type: ignore[arg-type]
    sent = caught.value.response.request.headers
    assert sent["authorization"] == "Bearer sk-by-not-a-key"
    assert "x-api-key" not in sent
    assert caught.value.status_code == 401
    error: Any = caught.value.body
    assert error["error"]["type"] == "authentication_error"
    assert "bearer token" in error["error"]["message"].lower(), error


async def test_count_tokens_counts_system_role_messages(wire: Wire) -> None:
    """``client.messages.count_tokens`` takes a system-role message and counts its text, as
    the create it stands for does (the simulated engine: one token per word)."""
    user = [{"role": "user", "content": "three four five"}]
    system_role = [{"role": "system", "content": "one two"}, *user]
    counted_user = await wire.sdk.messages.count_tokens(model=PLAIN, messages=user)  # type: ignore[arg-type]
    counted = await wire.sdk.messages.count_tokens(model=PLAIN, messages=system_role)  # type: ignore[arg-type]
    as_param = await wire.sdk.messages.count_tokens(model=PLAIN, system="one two", messages=user)  # type: ignore[arg-type]
    created = await wire.sdk.messages.create(model=PLAIN, max_tokens=8, messages=system_role)  # type: ignore[arg-type]
    assert counted_user.input_tokens == 3
    assert counted.input_tokens == 5 == as_param.input_tokens
    assert created.usage.input_tokens == counted.input_tokens
