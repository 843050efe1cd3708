"""The worker: claim queued requests, run them on their model's engine, record outcomes.

One dispatcher per process. It keeps many requests in flight (bounded per model by the
model's ``concurrency``), so an engine that batches (the local model) sees them together.
Outcomes are buffered and written in one transaction per flush: per-request commits would
cap throughput at the database's commit rate.

Leases: every claimed request holds a lease that this process extends while the request
is in flight or waiting to be flushed. If the process dies, the lease runs out and a
maintenance sweep (any process) puts the request back in the queue; the attempt number
bumped by the next claim fences off any late write from this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass

from batchyard.config import Settings
from batchyard.engines.base import EngineError
from batchyard.engines.registry import ModelRegistry, ServedModel
from batchyard.protocol.batches import errored_line, succeeded_line, unstarted_line
from batchyard.protocol.messages import MessageCreateParams, ParamsError, decode_params
from batchyard.store.records import ClaimedRequest, Completion, FinalState, Retry
from batchyard.store.sql import SqlStore
from batchyard.timeutil import MICROS_PER_SECOND, now_us
from batchyard.worker.backoff import backoff_micros

logger = logging.getLogger("batchyard.worker")

#: How long outcomes may wait in the buffer before a flush, in seconds.
_FLUSH_DELAY = 0.02
#: Requests of a model a worker holds, as a multiple of its concurrency: one set running
#: and one set waiting, so lanes never idle for a claim round trip.
_BUFFER_FACTOR = 2
#: Under load, how often to look for requests of models no engine here serves.
_UNSERVED_CLAIM_SECONDS = 5.0


@dataclass
class DispatcherStats:
    claimed: int = 0
    completed: int = 0
    retried: int = 0
    discarded: int = 0


class Dispatcher:
    def __init__(self, store: SqlStore, models: ModelRegistry, settings: Settings) -> None:
        self._store = store
        self._models = models
        self._settings = settings
        #: Requests claimed for each served model and not yet run: a worker holds at most
        #: ``_BUFFER_FACTOR x concurrency`` of a model, so a slow model's backlog stays in the
        #: database, where other workers and other models' requests are not stuck behind it.
        self._load: Counter[int] = Counter()
        #: One queue per served model, drained by ``concurrency`` lanes: the lanes are the
        #: concurrency limit, and no task is created per request.
        self._queues: dict[int, asyncio.Queue[tuple[ClaimedRequest, MessageCreateParams]]] = {
            id(served): asyncio.Queue() for served in models.models
        }
        self._in_flight: dict[int, ClaimedRequest] = {}
        #: Requests handed to an engine (the rest of ``_in_flight`` only waits in a queue).
        self._started: set[int] = set()
        #: Batches being canceled or past expiry (seq → result type), refreshed every claim
        #: round: a claimed request of such a batch is not sent to its engine.
        self._closing: dict[int, str] = {}
        #: Set when the claim loop should run a round now rather than at the next poll.
        self._nudge = asyncio.Event()
        self._next_unserved_claim = 0.0
        self._completions: list[Completion] = []
        self._retries: list[Retry] = []
        self._outcome_ready = asyncio.Event()
        self.stats = DispatcherStats()

    def wake(self) -> None:
        """New work was queued: claim now instead of at the next poll."""
        self._nudge.set()

    async def run(self) -> None:
        """Run until cancelled, then hand back what this process holds (see :meth:`_drain`)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._claim_loop())
                group.create_task(self._flush_loop())
                group.create_task(self._lease_loop())
                for served in self._models.models:
                    for _ in range(served.config.concurrency):
                        group.create_task(self._lane(served))
        finally:
            await self._drain()

    async def _drain(self) -> None:
        """On shutdown, record finished outcomes and return unfinished requests to the queue.

        Without this, a clean restart would re-run finished-but-unrecorded requests and leave
        unfinished ones waiting for their leases to run out. Best effort: if it fails (the
        process is being killed, the database is gone), the leases still cover everything.
        """
        completions, retries = self._completions, self._retries
        done = {c.request_id for c in completions} | {r.request_id for r in retries}
        now = now_us()
        retries = retries + [
            Retry(
                request_id=request.id,
                attempt=request.attempt,
                not_before=now,
                unstarted=request.id not in self._started,
            )
            for request in self._in_flight.values()
            if request.id not in done
        ]
        if not (completions or retries):
            return
        try:
            await asyncio.wait_for(self._store.finish(completions, retries, now), timeout=10)
        except Exception:
            logger.exception(
                "could not hand back %d requests on shutdown; their leases will expire instead",
                len(completions) + len(retries),
            )

    # ------------------------------------------------------------------ claiming

    async def _claim_loop(self) -> None:
        """Top up each model's buffer, then sleep until nudged or the poll interval passes.

        After a round every model is either topped up or has nothing queued, so the loop
        sleeps; it is nudged by new batches, by retries, and by a model whose buffer drained
        to its refill point.
        """
        settings = self._settings
        while True:
            self._nudge.clear()
            now = now_us()
            lease_until = now + int(settings.lease_seconds * MICROS_PER_SECOND)
            more_waiting = busy = False
            try:
                self._closing = await self._store.closing_batches(now)
                for served in self._models.models:
                    room = self._room(served)
                    if not room:
                        busy = True
                        continue
                    limit = min(room, settings.claim_size)
                    claimed = await self._store.claim(
                        limit=limit, now=now, lease_until=lease_until, models=served.names
                    )
                    self._accept(claimed)
                    busy |= len(claimed) == limit
                    more_waiting |= len(claimed) == limit and limit < room
                # Requests for models no engine here serves are claimed to be errored. Finding
                # them scans the queue (no index helps with NOT IN), so while any model is
                # busy it runs only every few seconds.
                if not busy or time.monotonic() >= self._next_unserved_claim:
                    self._next_unserved_claim = time.monotonic() + _UNSERVED_CLAIM_SECONDS
                    unserved = await self._store.claim(
                        limit=settings.claim_size,
                        now=now,
                        lease_until=lease_until,
                        models=self._models.names,
                        other_models=True,
                    )
                    self._accept(unserved)
                    if len(unserved) == settings.claim_size:  # more of them: go on at once
                        more_waiting = True
                        self._next_unserved_claim = 0.0
            except Exception:
                logger.exception("claim failed; retrying after the poll interval")
            if not more_waiting:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudge.wait(), settings.poll_interval_seconds)

    def _room(self, served: ServedModel) -> int:
        """How many more requests to claim for ``served``: none until it drains to its
        refill point (``concurrency`` left), then enough for ``_BUFFER_FACTOR`` sets."""
        load, concurrency = self._load[id(served)], served.config.concurrency
        return _BUFFER_FACTOR * concurrency - load if load <= concurrency else 0

    def _accept(self, claimed: list[ClaimedRequest]) -> None:
        for request in claimed:
            self._in_flight[request.id] = request
            self._route(request)
        self.stats.claimed += len(claimed)

    def _route(self, request: ClaimedRequest) -> None:
        """Queue a request for its model's lanes, or settle it now if it cannot run.

        Nothing a request contains may stop the claim loop: whatever goes wrong with one
        request becomes that request's ``errored`` result.
        """
        try:
            params = decode_params(request.params, in_batch=True)
        except ParamsError as exc:
            self._record(self._errored(request, exc.error_type, exc.message))
            return
        except Exception as exc:
            logger.exception("request %s could not be read", request.id)
            self._record(self._errored(request, "invalid_request_error", f"unreadable: {exc}"))
            return
        served = self._models.get(params.model)
        if served is None:
            self._record(self._errored(request, "not_found_error", f"model: {params.model}"))
            return
        self._load[id(served)] += 1
        self._queues[id(served)].put_nowait((request, params))

    # ------------------------------------------------------------------ running

    async def _lane(self, served: ServedModel) -> None:
        queue = self._queues[id(served)]
        while True:
            request, params = await queue.get()
            try:
                outcome = await self._execute(served, request, params)
            except Exception as exc:  # a bug in an engine must not lose the request
                logger.exception("request %s failed unexpectedly", request.id)
                outcome = self._failed(request, EngineError("api_error", f"internal error: {exc}"))
            self._load[id(served)] -= 1
            if self._load[id(served)] == served.config.concurrency:
                self._nudge.set()  # the refill point: claim more before the lanes run dry
            self._record(outcome)

    async def _execute(
        self, served: ServedModel, request: ClaimedRequest, params: MessageCreateParams
    ) -> Completion | Retry:
        if closed_as := self._closing.get(request.batch_seq):
            return self._unstarted(request, closed_as)
        self._started.add(request.id)
        try:
            message = await served.create_message(params)
        except ParamsError as exc:
            return self._errored(request, exc.error_type, exc.message)
        except EngineError as exc:
            return self._failed(request, exc)
        return Completion(
            request_id=request.id,
            attempt=request.attempt,
            state="succeeded",
            line=succeeded_line(request.custom_id, message),
        )

    def _record(self, outcome: Completion | Retry) -> None:
        if isinstance(outcome, Retry):
            self._retries.append(outcome)
        else:
            self._completions.append(outcome)
        self._outcome_ready.set()

    def _failed(self, request: ClaimedRequest, error: EngineError) -> Completion | Retry:
        if error.retryable and request.attempt < self._settings.max_attempts:
            delay = backoff_micros(
                request.attempt,
                base_seconds=self._settings.retry_base_seconds,
                max_seconds=self._settings.retry_max_seconds,
                retry_after=error.retry_after,
            )
            return Retry(
                request_id=request.id, attempt=request.attempt, not_before=now_us() + delay
            )
        return self._errored(request, error.error_type, error.message)

    @staticmethod
    def _unstarted(request: ClaimedRequest, result_type: str) -> Completion:
        state: FinalState = "canceled" if result_type == "canceled" else "expired"
        return Completion(
            request_id=request.id,
            attempt=request.attempt,
            state=state,
            line=unstarted_line(request.custom_id, state),
        )

    @staticmethod
    def _errored(request: ClaimedRequest, error_type: str, message: str) -> Completion:
        return Completion(
            request_id=request.id,
            attempt=request.attempt,
            state="errored",
            line=errored_line(request.custom_id, error_type, message),
        )

    # ------------------------------------------------------------------ recording

    async def _flush_loop(self) -> None:
        while True:
            await self._outcome_ready.wait()
            if len(self._completions) < self._settings.claim_size:
                await asyncio.sleep(_FLUSH_DELAY)
            self._outcome_ready.clear()
            completions, self._completions = self._completions, []
            retries, self._retries = self._retries, []
            try:
                applied = await self._store.finish(completions, retries, now_us())
            except Exception:
                logger.exception(
                    "recording %d outcomes failed; will retry", len(completions) + len(retries)
                )
                self._completions[:0] = completions
                self._retries[:0] = retries
                self._outcome_ready.set()
                await asyncio.sleep(self._settings.poll_interval_seconds)
                continue
            self.stats.completed += applied
            self.stats.discarded += len(completions) - applied
            self.stats.retried += len(retries)
            for request_id in [c.request_id for c in completions] + [r.request_id for r in retries]:
                self._in_flight.pop(request_id, None)
                self._started.discard(request_id)
            if retries:
                self.wake()

    async def _lease_loop(self) -> None:
        interval = self._settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            held = [(request.id, request.attempt) for request in self._in_flight.values()]
            if not held:
                continue
            until = now_us() + int(self._settings.lease_seconds * MICROS_PER_SECOND)
            try:
                await self._store.extend_leases(held, until)
            except Exception:
                logger.exception("extending %d leases failed", len(held))
