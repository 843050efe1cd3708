"""A finished batch's result files through the official SDK: they are made once and keep
their ids, and take the expiry the batch asked for, as OpenAI's do."""

from __future__ import annotations

from openai_sdk import MakeSdk, chat_line, finished_batch, jsonl


async def test_a_deleted_output_file_stays_deleted(make_sdk: MakeSdk) -> None:
    """Deleting a batch's output file does not bring it back on the next read of the batch:
    ``output_file_id`` keeps its value and no new file appears in ``files.list``. Clients
    store that id and delete results they have downloaded."""
    client = await make_sdk()
    batch = await finished_batch(client, jsonl([chat_line("a", max_tokens=4)]))
    first = batch.output_file_id
    assert first is not None
    assert (await client.files.delete(first)).deleted
    again = await client.batches.retrieve(batch.id)
    listed = [f.id async for f in client.files.list(purpose="batch_output")]
    assert again.output_file_id == first, (first, again.output_file_id)
    assert listed == [], listed


async def test_output_expires_after_gives_the_result_files_an_expiry(make_sdk: MakeSdk) -> None:
    """A batch created with ``output_expires_after`` has result files with an ``expires_at``,
    as OpenAI sets it (``created_at`` plus the seconds asked for), not ``null``."""
    client = await make_sdk()
    batch = await finished_batch(
        client,
        jsonl([chat_line("a", max_tokens=4)]),
        output_expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert batch.output_file_id is not None
    output = await client.files.retrieve(batch.output_file_id)
    assert output.expires_at is not None, output
