"""Continuous batching: one thread runs every in-flight request through a shared forward pass.

Why this shape (measured on a 2-core CPU, see BENCHMARKS.md): a decode step costs nearly the
same for 1 row as for 64, so throughput comes from keeping many rows in the batch. Requests
arrive one ``create_message`` at a time while others are mid-answer, so instead of static
batches (where a batch's stragglers keep newcomers waiting) the running batch evicts each
row the step it finishes and admits waiting requests between decode steps. Newcomers are
prefilled as a group (sorted by length so little padding is computed) and merged into the
running key/value cache (see :mod:`.kv_cache`).

Admission is bounded by ``max_batch_size`` rows and ``max_batch_tokens``: rows times the
longest reserved row (prompt + ``max_tokens``), the cache's worst-case shape, so memory does
not depend on how many requests are in flight. A request is admitted alone when even that
does not fit.

All torch work happens on this thread; torch releases the GIL inside its kernels, so the event
loop (and the HTTP server on it) stays responsive. Results travel back through
``concurrent.futures.Future`` objects; a caller that gives up cancels its future and its row
is dropped at the next step.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import torch

from batchyard.engines.local.detokenizer import TextStream
from batchyard.engines.local.grammar import Grammar, constrain
from batchyard.engines.local.kv_cache import BatchCache
from batchyard.engines.local.sampling import RowSampling, SamplingParams, next_tokens
from batchyard.errors import EngineError
from batchyard.protocol.messages import StopReason

logger = logging.getLogger(__name__)

#: Padded prompt tokens per prefill forward pass; bounds the activations of one prefill.
#: Measured with 64 x ~75-token prompts: 2048 beat 1024, 4096 and 8192 by 2-6%.
_PREFILL_TOKENS = 2048
#: Compact a running batch once 1/N of its rows are finished (see ``Batcher._advance``).
_COMPACT_WHEN_FINISHED_SHARE = 4
#: Below this, computing a shared prefix separately is not worth its extra forward pass.
_MIN_SHARED_PREFIX = 8


@dataclass(frozen=True)
class Completion:
    text: str
    #: Sampled tokens: up to and including the end-of-turn token or the token that completed
    #: the stop sequence (text after the stop sequence is cut, its tokens still counted).
    output_tokens: int
    stop_reason: StopReason
    stop_sequence: str | None


@dataclass
class Job:
    prompt: list[int]
    #: ``max_tokens``, already clipped to what the context window leaves.
    max_new_tokens: int
    #: Why generation ends when ``max_new_tokens`` is reached.
    length_stop: StopReason
    sampling: SamplingParams
    stop_sequences: Sequence[str]
    future: Future[Completion] = field(default_factory=Future)
    #: Streaming callers get text as it becomes final (called on the generation thread).
    on_text: Callable[[str], None] | None = None
    #: Tokens are sampled only among those that keep the answer in this grammar.
    grammar: Grammar | None = None

    @property
    def reserved_tokens(self) -> int:
        return len(self.prompt) + self.max_new_tokens


@dataclass
class _Row:
    job: Job
    stream: TextStream
    generated: int = 0
    #: Answered (or cancelled): the row rides along, ignored, until the batch is compacted.
    done: bool = False
    #: Characters already passed to ``job.on_text``.
    emitted: int = 0
    #: Where the row stands in its job's grammar (``None``: unconstrained).
    matcher: Any = None

    def __post_init__(self) -> None:
        if self.job.grammar is not None:
            self.matcher = self.job.grammar.matcher()


@dataclass
class _Batch:
    rows: list[_Row]
    cache: BatchCache
    #: ``[rows, columns]``, 1 where a cache column holds one of the row's tokens.
    mask: torch.Tensor
    #: Position id of each row's next input token.
    positions: torch.Tensor
    #: Each row's latest sampled token: the next step's input.
    tokens: torch.Tensor
    sampling: RowSampling


class Batcher:
    """Owns the generation thread; :meth:`submit` is safe to call from any thread."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: torch.device,
        max_batch_size: int,
        max_batch_tokens: int,
        eos_token_ids: set[int],
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._device = device
        self._max_rows = max_batch_size
        self._max_tokens = max_batch_tokens
        self._eos = eos_token_ids
        self._num_layers: int = model.config.num_hidden_layers
        self._pad_id = min(eos_token_ids)
        self._generator = torch.Generator(device=device)
        self._generator.seed()
        # Admitting costs a copy of the whole cache, so newcomers are let in a few at a time,
        # unless they have waited this many steps already or the batch is idle.
        self._admit_group = max(1, max_batch_size // 8)
        self._waited_steps = 0
        self._waiting: deque[Job] = deque()
        self._wakeup = threading.Condition()
        self._closed = False
        self._batch: _Batch | None = None
        self._thread = threading.Thread(target=self._run, name="batchyard-local", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._wakeup:
            if self._closed:
                raise EngineError("api_error", "the local engine is shut down")
            self._waiting.append(job)
            self._wakeup.notify()

    def close(self) -> None:
        """Stop the thread and fail whatever is still queued or running (retryable)."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        if self._thread.is_alive():
            self._thread.join()

    # ------------------------------------------------------------------ generation thread

    def _run(self) -> None:
        with torch.inference_mode():
            while (admitted := self._next_admission()) is not None:
                try:
                    if admitted:
                        self._prefill(admitted)
                    if self._batch is not None:
                        self._decode_step(self._batch)
                except Exception as exc:
                    logger.exception("local engine: generation failed")
                    self._fail_all(admitted, exc)
        self._fail_all([], None)

    def _next_admission(self) -> list[Job] | None:
        """Block until there is work; return the jobs to admit now, ``None`` once closed."""
        with self._wakeup:
            while not self._closed and not self._waiting and self._batch is None:
                self._wakeup.wait()
            if self._closed:
                return None
            return self._take_admissible()

    def _take_admissible(self) -> list[Job]:
        while self._waiting and self._waiting[0].future.cancelled():
            self._waiting.popleft()
        if not self._waiting:
            return []
        rows = [row for row in self._batch.rows if not row.done] if self._batch is not None else []
        free = self._max_rows - len(rows)
        if rows and free < 1:
            return []
        if rows and len(self._waiting) < min(free, self._admit_group):
            self._waited_steps += 1
            if self._waited_steps < self._admit_group:
                return []
        self._waited_steps = 0
        longest = max((row.job.reserved_tokens for row in rows), default=0)
        count = len(rows)
        taken: list[Job] = []
        while self._waiting and count < self._max_rows:
            job = self._waiting[0]
            longest_then = max(longest, job.reserved_tokens)
            if count and (count + 1) * longest_then > self._max_tokens:
                break
            self._waiting.popleft()
            if job.future.cancelled():
                continue
            taken.append(job)
            count += 1
            longest = longest_then
        return taken

    def _prefill(self, jobs: list[Job]) -> None:
        jobs = sorted(jobs, key=lambda job: len(job.prompt))
        start = 0
        while start < len(jobs):
            end = start + 1
            while end < len(jobs) and (end - start + 1) * len(jobs[end].prompt) <= _PREFILL_TOKENS:
                end += 1
            self._prefill_group(jobs[start:end])
            start = end

    def _prefill_group(self, jobs: list[Job]) -> None:
        """Prefill ``jobs`` together; a prefix they all share is computed once.

        Requests of one batch typically share a system prompt (or the chat template's default
        one), and prefill costs as much per token as decoding here, so the shared part runs
        for one row and its cache is copied to the others. Rows are then laid out as
        ``[shared | padding | own tokens]``; the mask hides the padding and position ids
        continue from the shared part.
        """
        cache = BatchCache(self._num_layers)
        shared = _shared_prefix([job.prompt for job in jobs])
        if shared:
            prefix = torch.tensor([jobs[0].prompt[:shared]], device=self._device)
            ones = torch.ones_like(prefix)
            self._forward(prefix, ones, ones.cumsum(dim=-1) - 1, cache)
            cache.expand(len(jobs))
        width = max(len(job.prompt) for job in jobs) - shared
        ids = torch.full((len(jobs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        for row, job in enumerate(jobs):
            own = job.prompt[shared:]
            ids[row, width - len(own) :] = torch.tensor(own)
            mask[row, shared + width - len(own) :] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        logits = self._forward(ids, mask, positions[:, shared:], cache)
        decode = self._decode_text
        group = _Batch(
            rows=[
                _Row(job, TextStream(decode, job.stop_sequences, incremental=bool(job.on_text)))
                for job in jobs
            ],
            cache=cache,
            mask=mask,
            positions=positions[:, -1] + 1,
            tokens=ids[:, -1],
            sampling=RowSampling([job.sampling for job in jobs], self._device),
        )
        self._advance(group, logits)
        self._compact(group)
        if not group.rows:
            return
        if self._batch is None:
            self._batch = group
        else:
            self._compact(self._batch)
            self._merge(self._batch, group)

    def _decode_step(self, batch: _Batch) -> None:
        ones = torch.ones((len(batch.rows), 1), dtype=torch.long, device=self._device)
        batch.mask = torch.cat([batch.mask, ones], dim=1)
        logits = self._forward(
            batch.tokens[:, None], batch.mask, batch.positions[:, None], batch.cache
        )
        batch.positions = batch.positions + 1
        self._advance(batch, logits)
        if not batch.rows:
            self._batch = None

    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: BatchCache
    ) -> torch.Tensor:
        output = self._model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits: torch.Tensor = output.logits[:, -1, :]
        return logits

    def _advance(self, batch: _Batch, logits: torch.Tensor) -> None:
        """Sample one token per row and settle the rows that are done.

        Finished rows are not evicted at once: eviction copies the whole key/value cache
        (hundreds of MB for 64 rows), while a finished row riding along costs one row of a
        decode step. The batch is compacted once a quarter of its rows are finished, when
        newcomers are merged in, or when every row is done.
        """
        constrain(logits, [None if row.done else row.matcher for row in batch.rows])
        tokens = next_tokens(logits, batch.sampling, self._generator)
        for row, token in zip(batch.rows, tokens.tolist(), strict=True):
            if row.done:
                continue
            if row.job.future.cancelled():
                row.done = True
                continue
            if row.matcher is not None and not row.matcher.consume_token(token):
                row.done = True
                error = EngineError("api_error", f"grammar: {row.matcher.get_error()}")
                with contextlib.suppress(InvalidStateError):
                    row.job.future.set_exception(error)
                continue
            row.generated += 1
            completion = self._settle(row, token)
            if completion is not None:
                row.done = True
                _resolve(row.job.future, completion)
        batch.tokens = tokens
        finished = sum(row.done for row in batch.rows)
        if finished == len(batch.rows):
            batch.rows = []
        elif finished * _COMPACT_WHEN_FINISHED_SHARE >= len(batch.rows):
            self._compact(batch)

    def _compact(self, batch: _Batch) -> None:
        """Evict finished rows (a copy of the cache for the rows that remain)."""
        keep = [index for index, row in enumerate(batch.rows) if not row.done]
        if len(keep) == len(batch.rows):
            return
        batch.rows = [batch.rows[index] for index in keep]
        if not keep:
            return
        rows = torch.tensor(keep, dtype=torch.long, device=self._device)
        batch.cache.select(rows)
        batch.mask = batch.mask[rows]
        batch.positions = batch.positions[rows]
        batch.tokens = batch.tokens[rows]
        batch.sampling.select(rows)
        self._trim(batch)

    def _settle(self, row: _Row, token: int) -> Completion | None:
        stream = row.stream
        if token in self._eos:
            stream.finish()
            return Completion(stream.text, row.generated, "end_turn", None)
        if (match := stream.push(token)) is not None:
            text = stream.text[: match.start]
            return Completion(text, row.generated, "stop_sequence", match.sequence)
        if row.job.on_text is not None:
            self._emit(row)
        if row.generated >= row.job.max_new_tokens:
            stream.finish()
            return Completion(stream.text, row.generated, row.job.length_stop, None)
        return None

    @staticmethod
    def _emit(row: _Row) -> None:
        """Stream the text that no stop sequence can still take back."""
        safe = row.stream.safe_length
        if safe > row.emitted and row.job.on_text is not None:
            row.job.on_text(row.stream.text[row.emitted : safe])
            row.emitted = safe

    def _trim(self, batch: _Batch) -> None:
        used = batch.mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        if first:
            batch.cache.trim_left(first)
            batch.mask = batch.mask[:, first:]

    def _merge(self, batch: _Batch, group: _Batch) -> None:
        batch.cache.extend(group.cache)
        width = batch.cache.length
        batch.mask = torch.cat([_left_pad(batch.mask, width), _left_pad(group.mask, width)])
        batch.positions = torch.cat([batch.positions, group.positions])
        batch.tokens = torch.cat([batch.tokens, group.tokens])
        batch.sampling.extend(group.sampling)
        batch.rows.extend(group.rows)

    def _decode_text(self, tokens: Sequence[int]) -> str:
        text: str = self._tokenizer.decode(tokens, skip_special_tokens=True)
        return text

    def _fail_all(self, admitted: list[Job], exc: Exception | None) -> None:
        """Fail the running batch (and, once closed, the queue) with a retryable error."""
        message = f"local generation failed: {exc}" if exc else "the local engine is shut down"
        jobs = list(admitted)
        if self._batch is not None:
            jobs.extend(row.job for row in self._batch.rows)
            self._batch = None
        if exc is None:
            with self._wakeup:
                jobs.extend(self._waiting)
                self._waiting.clear()
        for job in jobs:
            if not job.future.done():
                with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                    job.future.set_exception(EngineError("api_error", message))


def _shared_prefix(prompts: list[list[int]]) -> int:
    """Length of the prefix worth sharing: common to all, leaving each row a token of its own."""
    if len(prompts) < 2:
        return 0
    limit = min(len(prompt) for prompt in prompts) - 1
    first = prompts[0]
    length = 0
    while length < limit and all(prompt[length] == first[length] for prompt in prompts):
        length += 1
    return length if length >= _MIN_SHARED_PREFIX else 0


def _resolve(future: Future[Completion], completion: Completion) -> None:
    with contextlib.suppress(InvalidStateError):  # the caller cancelled meanwhile
        future.set_result(completion)


def _left_pad(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return torch.nn.functional.pad(mask, (missing, 0)) if missing else mask
