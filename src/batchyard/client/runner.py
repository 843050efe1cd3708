"""``batchyard run``: a table of rows in, the same table with each row's answer out.

The steps a user of a batch API otherwise writes by hand, in order:

1. **Before**: read the table, render every row's request, cut them into batches under the
   server's limits, count tokens on a sample and show the cost; ask before sending.
2. **During**: create the round's batches (recording each one in the state directory, see
   :mod:`batchyard.client.state`) and follow their ``request_counts`` until all have ended.
3. **After**: download each batch's result lines to disk as they are, then read them; rows
   that failed for a reason worth another try (:attr:`RowResult.retryable`) form the next
   round, up to ``retries`` rounds; the table is written in input order.

Interrupting a run (Ctrl-C) loses nothing: batches keep running on the server, and the same
command run again resumes from the state directory without creating any batch twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from batchyard.client.embedded import embedded_api
from batchyard.client.http import DEFAULT_BASE_URL, ApiError, BatchApi, Connection
from batchyard.client.plan import (
    MAX_BATCH_BYTES,
    MAX_BATCH_REQUESTS,
    TOKEN_SAMPLE,
    Requests,
    TokenEstimate,
    batch_body,
    build_requests,
    estimate_input_tokens,
    split,
)
from batchyard.client.pricing import Price, price_for
from batchyard.client.prompts import Template, custom_ids, load_text
from batchyard.client.results import ANSWER_COLUMNS, RowResult, read_results
from batchyard.client.state import Chunk, Round, RunState, StateDir
from batchyard.client.tables import Table, check_no_clash, read_table, write_table
from batchyard.protocol.batches import MessageBatch


class RunError(ValueError):
    """The run cannot go on; the message says why, in the user's terms."""


@dataclass(frozen=True)
class RunOptions:
    input: Path
    output: Path
    #: The prompt template (``{column}`` fields), or ``@file``.
    prompt: str
    model: str
    max_tokens: int
    system: str | None = None
    id_column: str | None = None
    #: An Anthropic-compatible API; ``None`` runs an embedded batchyard in this process.
    base_url: str | None = None
    api_key: str | None = None
    #: The embedded server's config (engines), as for ``batchyard serve``.
    config: Path | None = None
    retries: int = 2
    max_batch_requests: int = MAX_BATCH_REQUESTS
    max_batch_bytes: int = MAX_BATCH_BYTES
    poll_interval: float = 2.0
    token_sample: int = TOKEN_SAMPLE
    price_input: float | None = None
    price_output: float | None = None


@dataclass(frozen=True)
class Plan:
    """What will be sent and what it may cost, shown before anything is."""

    input: Path
    rows: int
    batches: int
    model: str
    where: str
    tokens: TokenEstimate | None
    max_output_tokens: int
    price: Price | None


@dataclass
class Summary:
    rows: int
    by_type: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    rounds: int = 0
    batches: int = 0
    retried: int = 0
    price: Price | None = None
    output: Path | None = None

    @property
    def batch_cost(self) -> float | None:
        if self.price is None:
            return None
        return self.price.cost(self.input_tokens, self.output_tokens, batch=True)

    @property
    def standard_cost(self) -> float | None:
        if self.price is None:
            return None
        return self.price.cost(self.input_tokens, self.output_tokens, batch=False)


@dataclass(frozen=True)
class RunResult:
    table: Table
    summary: Summary


class Display(Protocol):
    """Where a run reports to: the terminal for the CLI, nothing for a library call."""

    def plan(self, plan: Plan) -> None: ...

    def confirm(self, plan: Plan) -> bool: ...

    def resuming(self, state: RunState) -> None: ...

    def submitted(self, round_number: int, batch: MessageBatch, rows: int) -> None: ...

    def progress(self, round_number: int, batches: Sequence[MessageBatch]) -> None: ...

    def summary(self, summary: Summary) -> None: ...


class Quiet:
    """Reports nothing and asks nothing: a library call has said what it wants."""

    def plan(self, plan: Plan) -> None:
        pass

    def confirm(self, plan: Plan) -> bool:
        return True

    def resuming(self, state: RunState) -> None:
        pass

    def submitted(self, round_number: int, batch: MessageBatch, rows: int) -> None:
        pass

    def progress(self, round_number: int, batches: Sequence[MessageBatch]) -> None:
        pass

    def summary(self, summary: Summary) -> None:
        pass


class Aborted(Exception):
    """The user said no at the confirmation: nothing was sent."""


async def run_async(options: RunOptions, display: Display | None = None) -> RunResult:
    """Run every row of ``options.input``; the joined table, also written to ``output``."""
    shown = display or Quiet()
    table, requests = _prepare(options)
    state_dir = StateDir(options.output)
    state = state_dir.load(requests.fingerprint)
    first = split(
        range(len(table.rows)),
        requests,
        max_requests=options.max_batch_requests,
        max_bytes=options.max_batch_bytes,
    )
    state_dir.path.mkdir(parents=True, exist_ok=True)
    async with _connect(options, state_dir) as (api, where):
        price = await _check_model(api, options, where)
        if state is None:
            plan = Plan(
                input=options.input,
                rows=len(table.rows),
                batches=len(first),
                model=options.model,
                where=where,
                tokens=await _estimate(api, requests, options.token_sample),
                max_output_tokens=len(table.rows) * options.max_tokens,
                price=price,
            )
            shown.plan(plan)
            if not shown.confirm(plan):
                raise Aborted
            state = RunState(requests.fingerprint, [_round(requests.fingerprint, 0, first)])
            state_dir.save(state)
        else:
            shown.resuming(state)
        results = await _Driver(api, state, state_dir, requests, options, shown).run()
    joined = _join(table, results)
    write_table(joined, options.output)
    summary = _summarize(state, results, price, options.output)
    shown.summary(summary)
    return RunResult(joined, summary)


def run(
    input: str | Path,
    *,
    prompt: str,
    model: str,
    max_tokens: int,
    out: str | Path,
    **options: object,
) -> RunResult:
    """``batchyard run`` as a library call: the joined table (``.table``) and the summary.

    ``options`` are :class:`RunOptions`' other fields (``system``, ``id_column``,
    ``base_url``, ``api_key``, ``retries``...). Nothing is printed and nothing is asked. From
    inside a running event loop (a notebook), ``await run_async(RunOptions(...))`` instead.
    """
    settings = RunOptions(
        input=Path(input),
        output=Path(out),
        prompt=prompt,
        model=model,
        max_tokens=max_tokens,
        **options,  # type: ignore[arg-type]
    )
    return asyncio.run(run_async(settings))


def _prepare(options: RunOptions) -> tuple[Table, Requests]:
    table = read_table(options.input)
    if not table.rows:
        raise RunError(f"{options.input}: no rows to send")
    check_no_clash(table, ANSWER_COLUMNS)
    template = Template.parse(load_text(options.prompt), name="--prompt")
    template.check_columns(table.columns, options.input.name)
    system = load_text(options.system) if options.system is not None else None
    ids = custom_ids(table, options.id_column, what=options.input.name)
    return table, build_requests(
        table, ids, template, model=options.model, max_tokens=options.max_tokens, system=system
    )


@contextlib.asynccontextmanager
async def _connect(options: RunOptions, state_dir: StateDir) -> AsyncIterator[tuple[BatchApi, str]]:
    base_url = options.base_url or os.environ.get("ANTHROPIC_BASE_URL")
    if base_url is None:
        async with embedded_api(state_dir.database_url, options.config) as api:
            yield api, "an embedded batchyard"
        return
    api_key = options.api_key or os.environ.get("ANTHROPIC_API_KEY")
    if not api_key:
        raise RunError(f"{base_url} needs an API key: set ANTHROPIC_API_KEY or pass --api-key")
    async with BatchApi(Connection(base_url, api_key)) as api:
        yield api, base_url if base_url != DEFAULT_BASE_URL else "Anthropic"


async def _check_model(api: BatchApi, options: RunOptions, where: str) -> Price | None:
    """Refuse a model the server does not serve, or a ``max_tokens`` it would refuse, before
    anything is sent; the model's price, where known."""
    try:
        facts = await api.model(options.model)
    except ApiError as exc:
        if exc.status == 404:
            raise RunError(f"--model {options.model}: {where} does not serve it") from None
        raise
    if facts.max_tokens is not None and options.max_tokens > facts.max_tokens:
        raise RunError(
            f"--max-tokens {options.max_tokens}: {options.model} answers at most "
            f"{facts.max_tokens} tokens"
        )
    return price_for(
        options.model,
        facts.pricing,
        input_override=options.price_input,
        output_override=options.price_output,
    )


async def _estimate(api: BatchApi, requests: Requests, sample: int) -> TokenEstimate | None:
    """The input tokens, counted on a sample; ``None`` where the server cannot count them."""
    try:
        return await estimate_input_tokens(api, requests, sample=sample)
    except ApiError as exc:
        if exc.status in (404, 405, 501):
            return None
        raise


def _round(fingerprint: str, number: int, chunks: list[list[int]]) -> Round:
    return Round(
        [
            Chunk(rows, idempotency_key=f"batchyard-run-{fingerprint[:32]}-r{number}-b{index}")
            for index, rows in enumerate(chunks)
        ]
    )


class _Driver:
    """Rounds of batches: submit, follow, download, then the retryable failures again."""

    def __init__(
        self,
        api: BatchApi,
        state: RunState,
        state_dir: StateDir,
        requests: Requests,
        options: RunOptions,
        display: Display,
    ) -> None:
        self.api = api
        self.state = state
        self.state_dir = state_dir
        self.requests = requests
        self.options = options
        self.display = display
        self.results: dict[int, RowResult] = {}

    async def run(self) -> dict[int, RowResult]:
        number = 0
        while True:
            this_round = self.state.rounds[number]
            await self._submit(number, this_round)
            await self._follow(number, this_round)
            await self._download(this_round)
            self._read(this_round)
            number += 1
            if number < len(self.state.rounds):
                continue  # resuming: a later round was already planned
            again = [
                row
                for chunk in this_round.chunks
                for row in chunk.rows
                if self.results[row].retryable
            ]
            if not again or number > self.options.retries:
                return self.results
            chunks = split(
                again,
                self.requests,
                max_requests=self.options.max_batch_requests,
                max_bytes=self.options.max_batch_bytes,
            )
            self.state.rounds.append(_round(self.state.fingerprint, number, chunks))
            self.state_dir.save(self.state)

    async def _submit(self, number: int, this_round: Round) -> None:
        index = 0
        while index < len(this_round.chunks):
            chunk = this_round.chunks[index]
            if chunk.batch_id is None:
                try:
                    await self._create(number, chunk)
                except ApiError as exc:
                    if not _too_big(exc) or len(chunk.rows) == 1:
                        raise
                    this_round.chunks[index : index + 1] = _halves(chunk)
                    self.state_dir.save(self.state)
                    continue
            index += 1

    async def _create(self, number: int, chunk: Chunk) -> None:
        body = batch_body(self.requests, chunk.rows)
        create = asyncio.ensure_future(self.api.create(body, idempotency_key=chunk.idempotency_key))
        try:
            batch = await asyncio.shield(create)
        except asyncio.CancelledError:
            # Interrupted while the create is in flight: let it land and record it, so the
            # next run follows this batch instead of sending it again.
            self._record(number, chunk, await create)
            raise
        self._record(number, chunk, batch)

    def _record(self, number: int, chunk: Chunk, batch: MessageBatch) -> None:
        chunk.batch_id = batch.id
        self.state_dir.save(self.state)
        self.display.submitted(number + 1, batch, len(chunk.rows))

    async def _follow(self, number: int, this_round: Round) -> None:
        ids = [chunk.batch_id for chunk in this_round.chunks if chunk.batch_id is not None]
        while True:
            batches = await asyncio.gather(*(self.api.retrieve(batch_id) for batch_id in ids))
            self.display.progress(number + 1, batches)
            if all(batch.processing_status == "ended" for batch in batches):
                return
            await asyncio.sleep(self.options.poll_interval)

    async def _download(self, this_round: Round) -> None:
        for chunk in this_round.chunks:
            if chunk.results is not None or chunk.batch_id is None:
                continue
            path = self.state_dir.results_file(chunk.batch_id)
            await self.api.download_results(chunk.batch_id, path)
            chunk.results = path.name
            self.state_dir.save(self.state)

    def _read(self, this_round: Round) -> None:
        for chunk in this_round.chunks:
            assert chunk.results is not None and chunk.batch_id is not None
            by_id = {self.requests.custom_ids[row]: row for row in chunk.rows}
            for custom_id, result in read_results(self.state_dir.results_dir / chunk.results):
                row = by_id.pop(custom_id, None)
                if row is not None:
                    self.results[row] = result
            for row in by_id.values():
                self.results[row] = RowResult(
                    "errored",
                    error_type="api_error",
                    error_message=f"batch {chunk.batch_id} returned no result for this row",
                )


def _too_big(error: ApiError) -> bool:
    """The server's limits on one batch are lower than ours: the body's bytes (413, from the
    server or a proxy in front of it) or the request count (the 400 Anthropic and batchyard
    answer with)."""
    if error.status == 413 or error.error_type == "request_too_large":
        return True
    return error.status == 400 and error.message.startswith("requests: List should have at most")


def _halves(chunk: Chunk) -> list[Chunk]:
    """A chunk the server refused as too big, as two that were never sent (new keys: the old
    one named a body no server accepted)."""
    middle = len(chunk.rows) // 2
    return [
        Chunk(chunk.rows[:middle], f"{chunk.idempotency_key}-1"),
        Chunk(chunk.rows[middle:], f"{chunk.idempotency_key}-2"),
    ]


def _join(table: Table, results: dict[int, RowResult]) -> Table:
    rows = [{**row, **results[index].columns()} for index, row in enumerate(table.rows)]
    return Table(columns=[*table.columns, *ANSWER_COLUMNS], rows=rows)


def _summarize(
    state: RunState, results: dict[int, RowResult], price: Price | None, output: Path
) -> Summary:
    summary = Summary(rows=len(results), price=price, output=output, rounds=len(state.rounds))
    summary.batches = sum(len(r.chunks) for r in state.rounds)
    summary.retried = sum(len(chunk.rows) for r in state.rounds[1:] for chunk in r.chunks)
    for result in results.values():
        summary.by_type[result.result_type] += 1
        if result.result_type == "errored":
            summary.errors[result.error_type or "unknown"] += 1
        summary.input_tokens += result.input_tokens
        summary.output_tokens += result.output_tokens
    return summary
