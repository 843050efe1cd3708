"""Uploaded batch input files as common tools write them, through the official SDK."""

from __future__ import annotations

from openai_sdk import MakeSdk, chat_line, finished_batch, jsonl


async def test_a_utf8_bom_does_not_fail_the_batch(make_sdk: MakeSdk) -> None:
    """An input file that starts with a UTF-8 byte order mark (Windows Notepad, PowerShell 5's
    ``Out-File -Encoding utf8``, Excel's 'CSV UTF-8') runs like any other: the mark is an
    encoding marker, not part of line 1."""
    client = await make_sdk()
    content = b"\xef\xbb\xbf" + jsonl([chat_line("a", max_tokens=4), chat_line("b", max_tokens=4)])
    batch = await finished_batch(client, content)
    assert batch.status == "completed", batch.errors


async def test_a_filename_with_quotes_round_trips(make_sdk: MakeSdk) -> None:
    """A filename with ``"`` comes back as uploaded, though httpx (so both OpenAI SDK
    generations) sends it percent-encoded in the multipart header, as browsers do."""
    filename = 'say "hi".jsonl'
    client = await make_sdk()
    uploaded = await client.files.create(file=(filename, b'{"a": 1}\n'), purpose="batch")
    assert uploaded.filename == filename
