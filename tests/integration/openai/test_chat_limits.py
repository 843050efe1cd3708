"""HIGH: a chat request that sets no limit is refused on any model with a configured
``max_output_tokens`` (the README's own examples/demo.toml sets 2048), because the
translation fills in ``DEFAULT_MAX_TOKENS = 4096`` and the model's cap then refuses it."""

from __future__ import annotations

import asyncio

import openai
from review_helpers import ENDPOINT, chat_line, jsonl


async def test_chat_without_max_tokens_on_a_capped_model(make_sdk) -> None:  # type: ignore[no-untyped-def]
    """``client.chat.completions.create(model=..., messages=...)``, the plainest call there is,
    answers 400 ``max_tokens: 4096 > 2048`` on a model configured like the demo's
    (``max_output_tokens = 2048``), naming a field the client never sent. OpenAI never
    requires a limit: the answer runs to the model's maximum. Fix: default to the model's cap
    (``min(DEFAULT_MAX_TOKENS, max_output_tokens)``) when neither limit is set."""
    client = await make_sdk()
    completion = await client.chat.completions.create(
        model="capped", messages=[{"role": "user", "content": "hello"}]
    )
    assert completion.choices[0].message.content


async def test_batch_lines_without_max_tokens_on_a_capped_model(make_sdk) -> None:  # type: ignore[no-untyped-def]
    """The same in an OpenAI batch: every line without ``max_tokens`` lands in the error file
    with a 400 about ``max_tokens: 4096``. OpenAI runs such lines."""
    client = await make_sdk()
    uploaded = await client.files.create(
        file=("in.jsonl", jsonl([chat_line(f"r{i}", model="capped") for i in range(3)])),
        purpose="batch",
    )
    batch = await client.batches.create(
        input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h"
    )
    for _ in range(500):
        batch = await client.batches.retrieve(batch.id)
        if batch.status == "completed":
            break
        await asyncio.sleep(0.02)
    assert batch.request_counts is not None
    detail = ""
    if batch.error_file_id:
        detail = (await client.files.content(batch.error_file_id)).text[:300]
    assert batch.request_counts.failed == 0, detail


async def test_max_completion_tokens_over_the_cap_names_the_field_sent(make_sdk) -> None:  # type: ignore[no-untyped-def]
    """``max_completion_tokens: 5000`` over the cap is refused with ``param: "max_tokens"``
    and a message about ``max_tokens``: the client sent ``max_completion_tokens`` (the only
    limit newer OpenAI code sends). OpenAI names the parameter the request used."""
    client = await make_sdk()
    try:
        await client.chat.completions.create(
            model="capped",
            messages=[{"role": "user", "content": "hello"}],
            max_completion_tokens=5000,
        )
    except openai.BadRequestError as exc:
        assert isinstance(exc.body, dict)
        assert exc.body["param"] == "max_completion_tokens", exc.body
    else:
        raise AssertionError("expected a 400")
