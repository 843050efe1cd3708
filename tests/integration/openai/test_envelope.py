"""The OpenAI surface's response headers and error envelope, as the official SDK reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import openai
import pytest
from harness import sim_config
from inprocess import InProcessServer, running_app

FAILING = '\n[[models]]\nname = "busy"\nengine = "simulated"\noverloaded_rate = 1.0\n'


async def test_sdk_sees_the_request_id(make_sdk) -> None:  # type: ignore[no-untyped-def]
    """LOW-MEDIUM. Every response carries ``request-id`` (Anthropic's header) but not
    ``x-request-id``, the header OpenAI sends and the OpenAI SDKs read: ``completion._request_id``
    and ``APIError.request_id`` are ``None``, so the id users are told to log and quote is
    lost on the whole OpenAI surface (chat, files, batches). Fix: also send ``x-request-id``
    (same value) on every response."""
    client = await make_sdk()
    completion = await client.chat.completions.create(
        model="sim", max_tokens=4, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion._request_id is not None
    with pytest.raises(openai.NotFoundError) as caught:
        await client.batches.retrieve("batch_nope")
    assert caught.value.request_id is not None


@pytest.fixture
async def busy_server(tmp_path: Path) -> AsyncIterator[InProcessServer]:
    async with running_app(tmp_path / "busy", sim_config(extra_models=FAILING)) as running:
        yield running


async def test_overloaded_is_a_status_openai_clients_know(busy_server: InProcessServer) -> None:
    """LOW. An overloaded engine answers the OpenAI surface with HTTP **529** (Anthropic's
    private status). OpenAI sends 503 for an overloaded server; generic OpenAI-compatible
    clients and proxies (retry policies keyed on 429/500/502/503/504, e.g. tenacity or
    LiteLLM presets) do not treat 529 as retryable. The same 529 is written as
    ``status_code`` in batch error files. Fix: map ``overloaded_error`` to 503 on the
    OpenAI surface (and in OpenAI error lines)."""
    key = await busy_server.add_key("busy")
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=busy_server.app),
        base_url=busy_server.base_url,
        headers={"authorization": f"Bearer {key}"},
    ) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={"model": "busy", "max_tokens": 4, "messages": [{"role": "user", "content": "x"}]},
        )
    assert response.status_code == 503, (response.status_code, response.text)


async def test_unknown_model_is_model_not_found(make_sdk) -> None:  # type: ignore[no-untyped-def]
    """LOW. An unknown model answers 404 ``{"message": "model: nope", "param": "model",
    "code": null}``. OpenAI answers ``code: "model_not_found"`` with "The model `nope` does
    not exist or you do not have access to it."; clients branch on that code (e.g. to fall
    back to another model). Fix: give the route's not-found error that code."""
    client = await make_sdk()
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(
            model="nope", max_tokens=4, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "model_not_found", caught.value.body
