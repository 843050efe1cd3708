"""The ``batchyard`` command.

``serve`` (HTTP API, by default with a worker), ``worker`` (a worker alone), ``run-batch`` (an
OpenAI / vLLM batch file run in process, no server), ``db upgrade``, ``keys create``,
``webhooks add | list | remove``; and the client side (:mod:`batchyard.client.commands`):
``run`` (a table of rows in, their answers out) and ``batches list | show | cancel | results
| watch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy.engine import make_url

from batchyard import ids
from batchyard.client.commands import batches_app, run_command
from batchyard.config import Settings, load_settings
from batchyard.console import check_writable, fail
from batchyard.errors import ConfigError, SchemaMismatch
from batchyard.process import create_server_app, model_registry, run_worker
from batchyard.protocol.openai_batches import Batch
from batchyard.run_batch import run_batch
from batchyard.store import MEMORY_URL, Store, open_store
from batchyard.store.database import connect
from batchyard.store.schema import Upgrade, give_space_back_on_sqlite, upgrade
from batchyard.timeutil import now_us

T = TypeVar("T")

app = typer.Typer(
    help="Self-hosted, Anthropic-compatible Message Batches service.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
webhooks_app = typer.Typer(
    help="Webhooks: POST a signed message_batch.ended event when a batch ends.",
    no_args_is_help=True,
)
app.add_typer(webhooks_app, name="webhooks")
db_app = typer.Typer(help="The database's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(batches_app, name="batches")
app.command("run")(run_command)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///path, postgresql://...) or a SQLite file path. "
        "Default: $BATCHYARD_DATABASE_URL, else <data dir>/batchyard.db.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML config file (models, limits, retention).",
        exists=True,
        dir_okay=False,
    ),
]


def database_url(db: str | None) -> str | None:
    """A bare path means a SQLite file."""
    if db is None or "://" in db:
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def settings_from(config: Path | None, db: str | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, database_url=database_url(db), **overrides)
    except ConfigError as exc:
        fail(str(exc))


LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: str) -> None:
    if level.lower() not in LOG_LEVELS:
        fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic says which dialect it found each time a process opens the database.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))


def check_runnable(settings: Settings) -> None:
    """Fail fast, with one line, on what would otherwise surface as a startup traceback.

    The database first: building the models may import an engine's libraries (seconds for
    torch), and a wrong ``--db`` should not wait for that.
    """

    async def open_database() -> None:
        store = await open_store(settings.resolved_database_url())
        await store.close()

    try:
        asyncio.run(open_database())
    except Exception as exc:
        fail(f"cannot open the database {shown_url(settings.resolved_database_url())!r}: {exc}", 1)
    try:
        model_registry(settings)
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def serve(
    db: DbOption = None,
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    public_url: Annotated[
        str | None,
        typer.Option(help="Base URL clients use to reach this server (for results_url)."),
    ] = None,
    worker: Annotated[
        bool, typer.Option(help="Also run requests in this process (--no-worker: API only).")
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Serve the HTTP API (and, by default, a worker) until interrupted."""
    settings = settings_from(config, db, public_url=public_url)
    setup_logging(log_level)
    in_memory = settings.resolved_database_url() == MEMORY_URL
    if in_memory and not worker:
        fail(
            f"--no-worker cannot use the in-memory store ({MEMORY_URL}): no other process "
            "could run its batches"
        )
    check_runnable(settings)
    initial_key = ids.api_key() if in_memory else None
    if initial_key is not None:
        typer.echo(
            "In-memory store: nothing is kept after this process ends. "
            f"API key for this run (workspace 'default'):\n{initial_key}"
        )
    application = create_server_app(settings, run_worker=worker, initial_key=initial_key)
    uvicorn.run(
        application, host=host, port=port, log_level=log_level.lower(), timeout_graceful_shutdown=10
    )


@app.command("worker")
def worker_command(
    db: DbOption = None,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run requests from the queue without serving HTTP."""
    settings = settings_from(config, db)
    refuse_memory_store(settings, "a worker alone")
    setup_logging(log_level)
    check_runnable(settings)

    async def until_signalled() -> None:
        # SIGTERM (systemd, Kubernetes) and SIGINT stop the worker the same clean way:
        # finished outcomes recorded, unfinished requests handed back to the queue.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run_worker(settings)

    asyncio.run(until_signalled())


@keys_app.command("create")
def create_key(
    workspace: Annotated[str, typer.Option(help="Workspace the key belongs to.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Create an API key; the key itself is printed once, as the last line."""
    key = ids.api_key()
    with_store(
        settings_from(config, db),
        lambda store: store.keys.create_api_key(
            workspace, ids.hash_api_key(key), key[:10], now_us()
        ),
    )
    typer.echo(
        f"Created an API key for workspace {workspace!r}. Store it now; it is not shown again:"
    )
    typer.echo(key)


@webhooks_app.command("add")
def add_webhook(
    workspace: Annotated[str, typer.Option(help="Workspace whose batches notify this URL.")],
    url: Annotated[str, typer.Option(help="Where to POST events (http or https).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Register a webhook; its signing secret is printed once, as the last line."""
    if not url.startswith(("http://", "https://")):
        typer.echo("error: --url must start with http:// or https://", err=True)
        raise typer.Exit(2)
    secret = ids.webhook_secret()
    webhook_id = with_store(
        settings_from(config, db),
        lambda store: store.outbox.add_webhook(workspace, url, secret, now_us()),
    )
    typer.echo(
        f"Webhook {webhook_id} for workspace {workspace!r} -> {url}. Verify deliveries "
        "with this Standard Webhooks secret (shown once):"
    )
    typer.echo(secret)


@webhooks_app.command("list")
def list_webhooks(
    workspace: Annotated[str, typer.Option(help="Workspace to list.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """List a workspace's webhooks."""
    hooks = with_store(
        settings_from(config, db), lambda store: store.outbox.list_webhooks(workspace)
    )
    for hook in hooks:
        typer.echo(f"{hook.id}\t{hook.url}")


@webhooks_app.command("remove")
def remove_webhook(
    workspace: Annotated[str, typer.Option(help="Workspace the webhook belongs to.")],
    webhook_id: Annotated[int, typer.Option("--id", help="Webhook id, from 'webhooks list'.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a webhook and its undelivered events."""
    removed = with_store(
        settings_from(config, db), lambda store: store.outbox.remove_webhook(workspace, webhook_id)
    )
    if not removed:
        typer.echo(f"error: workspace {workspace!r} has no webhook {webhook_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Removed webhook {webhook_id}.")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, config: ConfigOption = None) -> None:
    """Bring the database's schema to this version's (an empty database too). Stop the
    servers and workers of an older version first; it runs in one transaction."""
    settings = settings_from(config, db)
    refuse_memory_store(settings, "db upgrade")
    url = settings.resolved_database_url()

    async def run() -> tuple[Upgrade, bool]:
        database = connect(url)
        try:
            return await upgrade(database), await give_space_back_on_sqlite(database)
        finally:
            await database.dispose()

    try:
        done, rewritten = asyncio.run(run())
    except SchemaMismatch as exc:
        fail(str(exc), 1)
    except Exception as exc:
        fail(f"database {shown_url(url)!r}: {exc}", 1)
    if done.before == done.after:
        typer.echo(f"The database is at schema revision {done.after} already.")
    else:
        before = done.before or "none (made before migrations, or empty)"
        typer.echo(f"Upgraded the database from schema revision {before} to {done.after}.")
    if rewritten:
        typer.echo("Rewrote the SQLite file so that retention gives its space back (VACUUM).")


@app.command("run-batch")
def run_batch_command(
    input_file: Annotated[
        Path,
        typer.Option(
            "-i",
            "--input-file",
            help="OpenAI / vLLM batch input (JSONL).",
            exists=True,
            dir_okay=False,
        ),
    ],
    output_file: Annotated[
        Path, typer.Option("-o", "--output-file", help="Where the results go (JSONL).")
    ],
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL or SQLite file path for the run's batch. Default: in memory.",
        ),
    ] = None,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "warning",
) -> None:
    """Run an OpenAI batch input file on the configured engines in this process (no server)
    and write every result, in the input's order, in OpenAI's output format."""
    settings = settings_from(config, db or MEMORY_URL)
    check_writable(output_file, "--output-file")
    setup_logging(log_level)
    check_runnable(settings)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("requests", total=None, failed=0)

    def show(batch: Batch) -> None:
        counts = batch.request_counts
        if counts is not None:
            done = counts.completed + counts.failed
            progress.update(task, total=counts.total, completed=done, failed=counts.failed)

    with progress:
        batch = asyncio.run(run_batch(settings, input_file, output_file, on_progress=show))
    if batch.status == "failed":
        errors = batch.errors.data if batch.errors else []
        for error in errors:
            where = f"line {error.line}" if error.line is not None else "file"
            typer.echo(f"{input_file}: {where}: {error.message}", err=True)
        fail(f"the input file was refused ({len(errors)} errors); nothing was run", 1)
    counts = batch.request_counts
    assert counts is not None
    typer.echo(
        f"{batch.status}: {counts.completed} succeeded, {counts.failed} failed of "
        f"{counts.total}; results in {output_file}",
        err=True,
    )


def shown_url(url: str) -> str:
    """A database URL fit for a message: its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: nothing in it to mask reliably
        return "<the --db URL>"


def refuse_memory_store(settings: Settings, who: str) -> None:
    """The in-memory store lives inside one ``serve`` process; nothing else can reach it."""
    if settings.resolved_database_url() == MEMORY_URL:
        fail(f"{who} cannot use the in-memory store ({MEMORY_URL}): only 'serve' can")


def with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Run one store operation from a synchronous command."""
    refuse_memory_store(settings, "this command")

    async def run() -> T:
        store = await open_store(settings.resolved_database_url())
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except Exception as exc:
        fail(f"database {shown_url(settings.resolved_database_url())!r}: {exc}", 1)


def main() -> None:
    app()
