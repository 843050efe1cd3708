"""Seed-style usage of the official ``anthropic`` Python SDK against a batchyard server.

Run as ``python sdk_scenarios.py SCENARIO BASE_URL API_KEY`` with whichever SDK version is
first on ``sys.path``; exits non-zero with a traceback if any expectation fails, and prints
one JSON summary line on success. Only the SDK's public, documented API is used.
"""

from __future__ import annotations

import json
import sys
import time

import anthropic

TICKETS = {
    "ticket-1": "My invoice shows a double charge for November.",
    "ticket-2": "The app crashes when I upload a photo.",
    "ticket-3": "How do I change the email on my account?",
}


def classify_request(custom_id: str, text: str, model: str = "sim") -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 64,
            "system": "Classify the support ticket as billing, bug or account.",
            "messages": [{"role": "user", "content": text}],
        },
    }


def wait_until_ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        counts = batch.request_counts
        total = (
            counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
        )
        print(f"{batch.processing_status} {counts}", file=sys.stderr)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, "batch did not end in time"
        time.sleep(0.2)
        assert total > 0


def classify(client: anthropic.Anthropic) -> dict[str, object]:
    batch = client.messages.batches.create(
        requests=[classify_request(cid, text) for cid, text in TICKETS.items()]
    )
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3
    assert batch.results_url is None
    ended = wait_until_ended(client, batch.id)
    assert ended.request_counts.succeeded == 3, ended.request_counts
    assert ended.results_url and ended.ended_at is not None
    seen = {}
    for result in client.messages.batches.results(batch.id):
        assert result.result.type == "succeeded", result
        message = result.result.message
        assert message.role == "assistant" and message.content[0].type == "text"
        assert message.usage.output_tokens > 0
        seen[result.custom_id] = message.content[0].text
    assert set(seen) == set(TICKETS), seen
    return {"batch_id": batch.id, "results": len(seen)}


def paginate(client: anthropic.Anthropic) -> dict[str, object]:
    created = [
        client.messages.batches.create(requests=[classify_request("only", "hi")]).id
        for _ in range(45)
    ]
    newest_first = list(reversed(created))
    forward = [batch.id for batch in client.messages.batches.list(limit=10)]
    assert forward == newest_first, "forward pagination must see each batch once, newest first"
    first_page = client.messages.batches.list(limit=10)
    assert first_page.has_more and len(first_page.data) == 10
    # Walking backwards from the oldest batch towards newer ones: each page holds the 10
    # batches just newer than the cursor, shown newest first; the SDK follows first_id.
    backward = [b.id for b in client.messages.batches.list(limit=10, before_id=created[0])]
    pages = [created[start : start + 10] for start in range(1, 45, 10)]
    assert backward == [bid for page in pages for bid in reversed(page)], backward
    return {"forward": len(forward), "backward": len(backward)}


def cancel(client: anthropic.Anthropic) -> dict[str, object]:
    batch = client.messages.batches.create(
        requests=[classify_request(f"slow-{i}", f"ticket {i}", model="sim-slow") for i in range(20)]
    )
    canceled = client.messages.batches.cancel(batch.id)
    assert canceled.processing_status in ("canceling", "ended")
    assert canceled.cancel_initiated_at is not None
    ended = wait_until_ended(client, batch.id)
    counts = ended.request_counts
    assert counts.canceled > 0, counts
    assert counts.succeeded + counts.canceled == 20, counts
    kinds = [result.result.type for result in client.messages.batches.results(batch.id)]
    assert len(kinds) == 20 and kinds.count("canceled") == counts.canceled
    return {"canceled": counts.canceled, "succeeded": counts.succeeded}


def delete(client: anthropic.Anthropic) -> dict[str, object]:
    batch = client.messages.batches.create(requests=[classify_request("a", "hello")])
    try:
        client.messages.batches.delete(batch.id)
        deleted_early = True
    except anthropic.BadRequestError:
        deleted_early = False
    wait_until_ended(client, batch.id)
    if not deleted_early:
        deleted = client.messages.batches.delete(batch.id)
        assert deleted.id == batch.id and deleted.type == "message_batch_deleted"
    try:
        client.messages.batches.retrieve(batch.id)
    except anthropic.NotFoundError:
        pass
    else:
        raise AssertionError("retrieve after delete must be 404")
    return {"deleted": batch.id, "refused_while_running": not deleted_early}


def count_tokens(client: anthropic.Anthropic) -> dict[str, object]:
    """GA and beta resources (SDKs up to 2.2 add ``?beta=true`` to the beta one) count what
    create then reports as input."""
    prompt = classify_request("count", TICKETS["ticket-1"])["params"]
    assert isinstance(prompt, dict)
    system, messages = prompt["system"], prompt["messages"]
    counted = client.messages.count_tokens(model="sim", system=system, messages=messages)
    beta = client.beta.messages.count_tokens(model="sim", system=system, messages=messages)
    message = client.messages.create(model="sim", max_tokens=8, system=system, messages=messages)
    assert counted.input_tokens == beta.input_tokens == message.usage.input_tokens, (
        counted,
        beta,
        message.usage,
    )
    try:
        client.messages.count_tokens(model="no-such-model", messages=messages)
    except anthropic.NotFoundError:
        pass
    else:
        raise AssertionError("an unknown model must be 404")
    return {"input_tokens": counted.input_tokens}


SCENARIOS = {
    "classify": classify,
    "paginate": paginate,
    "cancel": cancel,
    "delete": delete,
    "count_tokens": count_tokens,
}

if __name__ == "__main__":
    name, base_url, api_key = sys.argv[1:4]
    client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0)
    summary = SCENARIOS[name](client)
    print(json.dumps({"sdk": anthropic.__version__, "scenario": name, **summary}))
