"""``batchyard run`` and ``batchyard batches list | show | cancel | results | watch``.

Thin: options in, :mod:`batchyard.client.runner` or one :class:`BatchApi` call, then the
answer on the terminal. A mistake in the input is one ``error:`` line and exit status 2,
before anything is sent; a refusal by the server is one line and status 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table as RichTable

from batchyard.client.display import TerminalDisplay
from batchyard.client.http import ApiError, BatchApi, Connection
from batchyard.client.plan import MAX_BATCH_BYTES, MAX_BATCH_REQUESTS, TOKEN_SAMPLE
from batchyard.client.runner import Aborted, RunOptions, run_async
from batchyard.console import check_writable, fail
from batchyard.errors import ConfigError
from batchyard.protocol.batches import MessageBatch

T = TypeVar("T")

BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="ANTHROPIC_BASE_URL",
        help="An Anthropic-compatible API (batchyard, or https://api.anthropic.com). "
        "Default: $ANTHROPIC_BASE_URL.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="ANTHROPIC_API_KEY",
        help="Default: $ANTHROPIC_API_KEY.",
        show_default=False,
    ),
]

batches_app = typer.Typer(
    help="Look after batches on an Anthropic-compatible API: list, show, cancel, results, watch.",
    no_args_is_help=True,
)


def run_command(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="The rows: .csv, .jsonl or .parquet.",
            exists=True,
            dir_okay=False,
        ),
    ],
    prompt: Annotated[
        str, typer.Option(help="The user message: {column} fields filled from each row, or @file.")
    ],
    model: Annotated[str, typer.Option(help="The model every request asks for.")],
    max_tokens: Annotated[int, typer.Option(min=1, help="max_tokens of every request.")],
    out: Annotated[
        Path, typer.Option("--out", help="The rows with their answers: .csv, .jsonl or .parquet.")
    ],
    system: Annotated[str | None, typer.Option(help="A system prompt, or @file.")] = None,
    id_column: Annotated[
        str | None,
        typer.Option(help="Column whose values become custom_ids. Default: row numbers."),
    ] = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Without --base-url: the embedded server's config (engines), as for serve.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option(min=0, help="Rounds of resubmitting retryable errors and expired rows.")
    ] = 2,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Most requests in one batch.")
    ] = MAX_BATCH_REQUESTS,
    batch_bytes: Annotated[
        int, typer.Option(min=1024, help="Most bytes in one batch's create body.")
    ] = MAX_BATCH_BYTES,
    token_sample: Annotated[
        int, typer.Option(min=1, help="Rows whose tokens are counted before sending.")
    ] = TOKEN_SAMPLE,
    price_input: Annotated[
        float | None, typer.Option(min=0, help="USD per million input tokens (standard price).")
    ] = None,
    price_output: Annotated[
        float | None, typer.Option(min=0, help="USD per million output tokens (standard price).")
    ] = None,
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between progress checks.")
    ] = 2.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before sending.")] = False,
) -> None:
    """Send every row of INPUT as one request and write the rows with their answers to OUT.

    Without --base-url (or $ANTHROPIC_BASE_URL) the requests run on a batchyard inside this
    process. Ctrl-C is safe: the same command again resumes without sending anything twice.
    """
    if not yes and not sys.stdin.isatty():
        fail("confirmation needed and standard input is not a terminal: pass --yes")
    options = RunOptions(
        input=input_path,
        output=out,
        prompt=prompt,
        model=model,
        max_tokens=max_tokens,
        system=system,
        id_column=id_column,
        base_url=base_url,
        api_key=api_key,
        config=config,
        retries=retries,
        max_batch_requests=batch_size,
        max_batch_bytes=batch_bytes,
        poll_interval=poll_interval,
        token_sample=token_sample,
        price_input=price_input,
        price_output=price_output,
    )
    check_writable(out, "--out")
    with TerminalDisplay(assume_yes=yes) as display:
        try:
            asyncio.run(run_async(options, display))
        except Aborted:
            fail("nothing was sent", 1)
        except KeyboardInterrupt:
            display.close()
            where = (
                "keep running on the server"
                if base_url
                else f"wait in {out.name}.batchyard/ (embedded mode)"
            )
            fail(
                f"interrupted: the batches sent so far {where}; run the same command again "
                "to resume without sending them twice",
                130,
            )
        except ApiError as exc:
            fail(str(exc), 1)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the API: {exc}", 1)
        except (ValueError, ConfigError) as exc:
            fail(str(exc))


def _call(
    base_url: str | None, api_key: str | None, action: Callable[[BatchApi], Awaitable[T]]
) -> T:
    if not base_url:
        fail("no API: pass --base-url or set ANTHROPIC_BASE_URL")
    if not api_key:
        fail("no API key: pass --api-key or set ANTHROPIC_API_KEY")

    async def run() -> T:
        async with BatchApi(Connection(base_url, api_key)) as api:
            return await action(api)

    try:
        return asyncio.run(run())
    except ApiError as exc:
        fail(str(exc), 1)
    except httpx.HTTPError as exc:
        fail(f"{base_url}: {exc}", 1)


def _counts(batch: MessageBatch) -> str:
    c = batch.request_counts
    return (
        f"{c.succeeded} succeeded, {c.errored} errored, {c.canceled} canceled, "
        f"{c.expired} expired, {c.processing} processing"
    )


@batches_app.command("list")
def list_batches(
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most batches shown.")] = 20,
) -> None:
    """The newest batches, with their progress."""

    async def newest(api: BatchApi) -> list[MessageBatch]:
        found: list[MessageBatch] = []
        async for batch in api.batches():
            found.append(batch)
            if len(found) == limit:
                break
        return found

    table = RichTable("id", "status", "done", "succeeded", "errored", "created", "ended")
    for batch in _call(base_url, api_key, newest):
        c = batch.request_counts
        total = c.processing + c.succeeded + c.errored + c.canceled + c.expired
        table.add_row(
            batch.id,
            batch.processing_status,
            f"{total - c.processing}/{total}",
            str(c.succeeded),
            str(c.errored + c.expired),
            batch.created_at,
            batch.ended_at or "",
        )
    Console().print(table)


@batches_app.command("show")
def show_batch(
    batch_id: Annotated[str, typer.Argument(metavar="BATCH_ID")],
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """One batch: status, counts and times."""
    batch = _call(base_url, api_key, lambda api: api.retrieve(batch_id))
    grid = RichTable.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("id", batch.id)
    grid.add_row("status", batch.processing_status)
    grid.add_row("requests", _counts(batch))
    for name in ("created_at", "expires_at", "ended_at", "cancel_initiated_at", "archived_at"):
        value = getattr(batch, name)
        if value is not None:
            grid.add_row(name, value)
    Console().print(grid)


@batches_app.command("cancel")
def cancel_batch(
    batch_id: Annotated[str, typer.Argument(metavar="BATCH_ID")],
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Cancel a batch: requests not yet run end as canceled."""
    batch = _call(base_url, api_key, lambda api: api.cancel(batch_id))
    typer.echo(f"{batch.id}: {batch.processing_status} ({_counts(batch)})")


@batches_app.command("results")
def batch_results(
    batch_id: Annotated[str, typer.Argument(metavar="BATCH_ID")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the JSONL here. Default: standard output.")
    ] = None,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """An ended batch's result lines (JSONL), exactly as the server sends them."""
    if out is not None:
        check_writable(out, "--out")
        _call(base_url, api_key, lambda api: api.download_results(batch_id, out))
        return
    _call(base_url, api_key, lambda api: api.copy_results(batch_id, sys.stdout.buffer))


@batches_app.command("watch")
def watch_batch(
    batch_id: Annotated[str, typer.Argument(metavar="BATCH_ID")],
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    poll_interval: Annotated[float, typer.Option(min=0.05)] = 2.0,
) -> None:
    """A progress bar until the batch ends, then its counts."""

    async def follow(api: BatchApi) -> MessageBatch:
        with TerminalDisplay() as display:
            while True:
                batch = await api.retrieve(batch_id)
                display.progress(1, [batch])
                if batch.processing_status == "ended":
                    return batch
                await asyncio.sleep(poll_interval)

    batch = _call(base_url, api_key, follow)
    typer.echo(f"{batch.id}: ended ({_counts(batch)})", err=True)
