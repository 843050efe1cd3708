"""``batchyard run-batch``: an OpenAI / vLLM batch input file in, its output file out, with no
server to start: the store and the configured engines run in this process, as vLLM's
``run_batch`` does.

The file takes the path a client's would, through the services the HTTP routes call: stored as
a file, made a batch (its lines checked as ``POST /v1/batches`` checks them), run by the
in-process worker, and its output and error files rendered from the stored outcomes. The output
has one line per request **in the input's order**, answers and errors alike (vLLM's
``run_batch`` writes both into one file), each in OpenAI's output line format. It is written to
a temporary file beside the output and renamed into place, so a run cut short never leaves a
partial file that looks complete.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec

from batchyard import ids
from batchyard.api.context import ApiContext
from batchyard.config import Settings
from batchyard.process import create_server_app
from batchyard.protocol.openai_batches import ENDPOINTS, UTF8_BOM, Batch, BatchCreate
from batchyard.service.batches import Caller

#: Statuses after which nothing about a batch changes.
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
_CHUNK = 1 << 20
_POLL_SECONDS = 0.25


class _CustomId(msgspec.Struct):
    custom_id: str


_custom_id = msgspec.json.Decoder(_CustomId)
_encoder = msgspec.json.Encoder()


async def run_batch(
    settings: Settings,
    input_path: Path,
    output_path: Path,
    *,
    on_progress: Callable[[Batch], None] = lambda batch: None,
) -> Batch:
    """Run every request of ``input_path`` and write ``output_path``; the batch's final state.

    A file with bad lines ends as a ``failed`` batch (its ``errors`` say which lines) and no
    output is written.
    """
    key = ids.api_key()
    app = create_server_app(settings, initial_key=key)
    async with app.router.lifespan_context(app):
        context: ApiContext = app.state.context
        workspace_id = await context.keys.workspace_for_key(ids.hash_api_key(key))
        assert workspace_id is not None
        caller = Caller(workspace_id=workspace_id, public_url="")
        uploaded = await context.files.upload(
            caller, {"purpose": "batch"}, input_path.name, _chunks(input_path)
        )
        create = BatchCreate(
            input_file_id=uploaded.id, endpoint=ENDPOINTS[0], completion_window="24h"
        )
        batch = await context.openai_batches.create(caller, _encoder.encode(create))
        context.nudge_worker()
        while batch.status not in FINAL_STATUSES:
            on_progress(batch)
            await asyncio.sleep(_POLL_SECONDS)
            batch = await context.openai_batches.retrieve(caller, batch.id)
        on_progress(batch)
        if batch.status != "failed":
            await _write_output(context, caller, batch, input_path, output_path)
        return batch


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            yield chunk


async def _write_output(
    context: ApiContext, caller: Caller, batch: Batch, input_path: Path, output_path: Path
) -> None:
    """The output and error files' lines, merged into the input's order."""
    lines: dict[str, bytes] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id is None:
            continue
        content = await context.files.content(caller, file_id)
        pending = b""
        async for chunk in content.chunks:
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                lines[_custom_id.decode(line).custom_id] = line
    partial = output_path.with_name(output_path.name + ".partial")
    try:
        with input_path.open("rb") as source, partial.open("wb") as out:
            for raw in source:
                if raw.strip():
                    out.write(
                        lines[_custom_id.decode(raw.removeprefix(UTF8_BOM)).custom_id] + b"\n"
                    )
            out.flush()
            os.fsync(out.fileno())
        partial.replace(output_path)
    finally:
        partial.unlink(missing_ok=True)
