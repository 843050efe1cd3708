"""The worker: claim queued requests, run them on their model's engine, record outcomes.

One dispatcher per process. It decides what to claim and where each request goes; engines
run them; the :class:`~batchyard.worker.outcome_buffer.OutcomeBuffer` writes outcomes in
batches and the :class:`~batchyard.worker.lease_keeper.LeaseKeeper` keeps the leases of
everything held alive until then.

It keeps many requests in flight (bounded per model by the model's ``concurrency``), so an
engine that batches (the local model) sees them together, and holds at most
``_BUFFER_FACTOR x concurrency`` of a model, so a slow model's backlog stays in the store,
where other workers and other models' requests are not stuck behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from batchyard.config import Settings
from batchyard.engines.registry import ModelRegistry, ServedModel
from batchyard.errors import ApiError, EngineError
from batchyard.protocol import outcomes
from batchyard.protocol.chat_paths import ChatPaths
from batchyard.protocol.chat_translation import decode_request, translate
from batchyard.protocol.errors import ErrorType
from batchyard.protocol.messages import decode_params
from batchyard.protocol.routing import Route, names_a_beta
from batchyard.store.protocols import QueueStore, RateLimitStore
from batchyard.store.records import ClaimedRequest, Finished, Retry, UnstartedState
from batchyard.timeutil import now_us
from batchyard.worker.backoff import backoff_micros
from batchyard.worker.lease_keeper import LeaseKeeper
from batchyard.worker.outcome_buffer import OutcomeBuffer
from batchyard.worker.pacing import Pacer

logger = logging.getLogger("batchyard.worker")

#: How long outcomes may wait in the buffer before a flush, in seconds.
_FLUSH_DELAY = 0.02
#: Requests of a model a worker holds, as a multiple of its concurrency: one set running
#: and one set waiting, so lanes never idle for a claim round trip.
_BUFFER_FACTOR = 2
#: Under load, how often to look for requests of models no engine here serves.
_UNSERVED_CLAIM_SECONDS = 5.0
#: How long a clean shutdown may spend handing back what this process holds.
_DRAIN_SECONDS = 10.0

#: A request to run, its route, and for a translated chat request the map to its fields.
_Work = tuple[ClaimedRequest, Route, ChatPaths | None]
#: Full validation of a batch request, for one that cannot be routed or names no model here.
_validate = partial(decode_params, in_batch=True)


class Dispatcher:
    def __init__(
        self,
        queue: QueueStore,
        models: ModelRegistry,
        settings: Settings,
        rate_limits: RateLimitStore,
    ) -> None:
        self._queue = queue
        self._models = models
        self._settings = settings
        self._leases = LeaseKeeper(queue, settings.lease_seconds)
        self._outcomes = OutcomeBuffer(
            queue,
            max_size=settings.claim_size,
            max_delay=_FLUSH_DELAY,
            retry_pause=settings.poll_interval_seconds,
            on_flushed=self._flushed,
        )
        #: Requests claimed per served model (by its configured name) and not yet run.
        self._load: Counter[str] = Counter()
        #: One queue per served model, drained by ``concurrency`` lanes: the lanes are the
        #: concurrency limit, and no task is created per request.
        self._lanes: dict[str, asyncio.Queue[_Work]] = {
            served.config.name: asyncio.Queue() for served in models.dispatched
        }
        #: Each model's calls wait here for their turn under its rate limits.
        self._pacers: dict[str, Pacer] = {
            served.config.name: Pacer(
                served.config, rate_limits, upstream=served.upstream, concurrency=served.concurrency
            )
            for served in models.models
        }
        #: ``(row_id, attempt)`` of requests handed to an engine (the other held ones only
        #: wait in a lane's queue).
        self._started: set[tuple[int, int]] = set()
        #: Batches being canceled or past expiry (seq → how their requests end), refreshed
        #: every claim round: a claimed request of such a batch is not sent to its engine.
        self._closing: dict[int, UnstartedState] = {}
        #: Set when the claim loop should run a round now rather than at the next poll.
        self._nudge = asyncio.Event()
        self._next_unserved_claim = 0.0

    def wake(self) -> None:
        """New work was queued (or a batch closed): claim now instead of at the next poll."""
        self._nudge.set()

    async def run(self) -> None:
        """Run until cancelled, then hand back what this process holds (see :meth:`_drain`)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._claim_loop())
                group.create_task(self._outcomes.run())
                group.create_task(self._leases.run())
                for served in self._models.dispatched:
                    for _ in range(served.concurrency):
                        group.create_task(self._lane(served))
        finally:
            await self._drain()

    async def _drain(self) -> None:
        """On shutdown, record finished outcomes and return unfinished requests to the queue.

        Without this, a clean restart would re-run finished-but-unrecorded requests and leave
        unfinished ones waiting for their leases to run out. Best effort: if it fails (the
        process is being killed, the store is gone), the leases still cover everything.
        """
        waiting = self._outcomes.waiting()
        now = now_us()
        for request in self._leases.held():
            lease = (request.row_id, request.attempt)
            if lease not in waiting:
                self._outcomes.add(
                    Retry(
                        row_id=request.row_id,
                        attempt=request.attempt,
                        not_before=now,
                        unstarted=lease not in self._started,
                    )
                )
        try:
            async with asyncio.timeout(_DRAIN_SECONDS):
                flushed = await self._outcomes.flush()
        except TimeoutError:
            flushed = False
        if not flushed:
            logger.error("could not hand back what this worker held; its leases will expire")

    def _flushed(self, finished: Sequence[Finished], retries: Sequence[Retry]) -> None:
        leases = [(f.row_id, f.attempt) for f in finished] + [
            (r.row_id, r.attempt) for r in retries
        ]
        self._leases.release(leases)
        self._started.difference_update(leases)
        if retries:
            self.wake()

    # ------------------------------------------------------------------ claiming

    async def _claim_loop(self) -> None:
        """Top up each model's lanes, then sleep until nudged or the poll interval passes.

        After a round every model is either topped up or has nothing queued, so the loop
        sleeps; it is nudged by new batches, by cancels, by retries, and by a model whose
        lanes drained to their refill point.
        """
        settings = self._settings
        while True:
            self._nudge.clear()
            try:
                more_waiting = await self._claim_round()
            except Exception:
                logger.exception("claim failed; retrying after the poll interval")
                more_waiting = False
            if more_waiting:
                await asyncio.sleep(0)  # a store that never suspends must not starve the loop
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.poll_interval_seconds):
                        await self._nudge.wait()

    async def _claim_round(self) -> bool:
        """One round of claims; ``True`` if a model has more waiting than was claimed."""
        settings = self._settings
        now = now_us()
        lease_until = self._leases.lease_until(now)
        more_waiting = busy = False
        self._closing = await self._queue.closing_batches(now)
        for served in self._models.dispatched:
            room = self._room(served)
            if not room:
                busy = True
                continue
            limit = min(room, settings.claim_size)
            claimed = await self._queue.claim(
                limit=limit, now=now, lease_until=lease_until, models=served.names
            )
            self._accept(claimed)
            busy |= bool(claimed)
            # A claim may be short although more is queued (it shares out at most a few dozen
            # batches at once, and leaves what other claimers hold): go on while it brings
            # something and there is room; an empty claim ends the round.
            more_waiting |= bool(claimed) and self._room(served) > 0
        # Requests for models no engine here serves are claimed to be errored. Finding them
        # scans the queue (no index helps with NOT IN), so while any model is busy it runs
        # only every few seconds.
        if not busy or time.monotonic() >= self._next_unserved_claim:
            self._next_unserved_claim = time.monotonic() + _UNSERVED_CLAIM_SECONDS
            unserved = await self._queue.claim(
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
        return more_waiting

    def _room(self, served: ServedModel) -> int:
        """How many more requests to claim for ``served``: none until it drains to its
        refill point (``concurrency`` left), then enough for ``_BUFFER_FACTOR`` sets."""
        load, concurrency = self._load[served.config.name], served.concurrency
        return _BUFFER_FACTOR * concurrency - load if load <= concurrency else 0

    def _accept(self, claimed: list[ClaimedRequest]) -> None:
        self._leases.hold(claimed)
        for request in claimed:
            self._route(request)

    def _route(self, request: ClaimedRequest) -> None:
        """Queue a request for its model's lanes, or settle it now if it cannot run.

        Only the routing fields are read here; the model's engine validates the rest (or,
        for a relay, its upstream does). Nothing a request contains may stop the claim loop:
        whatever goes wrong with one request becomes that request's ``errored`` outcome.
        """
        paths: ChatPaths | None = None
        try:
            if request.chat:  # an OpenAI batch's line: its Messages equivalent runs
                translation = translate(
                    decode_request(request.params),
                    in_batch=True,
                    default_max_tokens=self._models.default_max_tokens,
                )
                request = replace(request, params=translation.params, chat=False)
                paths = translation.paths
            beta = names_a_beta(request.headers)
            served, route = self._models.route(request.params, partial(_validate, beta=beta))
        except ApiError as exc:
            if paths is not None:
                exc = paths.chat_error(exc)
            self._outcomes.add(_errored(request, exc.error_type, exc.message))
            return
        except Exception as exc:
            logger.exception("request %s could not be read", request.row_id)
            self._outcomes.add(_errored(request, "invalid_request_error", f"unreadable: {exc}"))
            return
        self._load[served.config.name] += 1
        self._lanes[served.config.name].put_nowait((request, route, paths))

    # ------------------------------------------------------------------ running

    async def _lane(self, served: ServedModel) -> None:
        name = served.config.name
        lane = self._lanes[name]
        while True:
            request, route, paths = await lane.get()
            try:
                outcome = await self._execute(served, request, route, paths)
            except Exception as exc:  # a bug in an engine must not lose the request
                logger.exception("request %s failed unexpectedly", request.row_id)
                outcome = self._failed(request, EngineError("api_error", f"internal error: {exc}"))
            self._load[name] -= 1
            if self._load[name] == served.concurrency:
                self.wake()  # the refill point: claim more before the lanes run dry
            self._outcomes.add(outcome)

    async def _execute(
        self, served: ServedModel, request: ClaimedRequest, route: Route, paths: ChatPaths | None
    ) -> Finished | Retry:
        """Run one request; ``paths`` (a translated chat request's) names the chat field in
        an error about its params."""
        if closed_as := self._closing.get(request.batch_seq):
            return Finished(row_id=request.row_id, attempt=request.attempt, state=closed_as)
        pacer = self._pacers[served.config.name]
        ticket = await pacer.admit(len(request.params))
        self._started.add((request.row_id, request.attempt))
        answer = error = None
        try:
            answer = await served.create_message(
                route,
                request.params,
                request.headers,
                in_batch=True,
                beta=names_a_beta(request.headers),
            )
        except ApiError as exc:
            error = exc
            return self._failed(request, paths.chat_error(exc) if paths else exc)
        finally:
            pacer.settle(ticket, answer, error)
        return Finished(
            row_id=request.row_id,
            attempt=request.attempt,
            state="succeeded",
            outcome=outcomes.encode(outcomes.succeeded(answer.message)),
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
        )

    def _failed(self, request: ClaimedRequest, error: ApiError) -> Finished | Retry:
        """A retry with backoff for a retryable engine error with attempts left, else the
        ``errored`` outcome (params problems are never retried)."""
        retryable = isinstance(error, EngineError) and error.retryable
        if retryable and request.attempt < self._settings.max_attempts:
            delay = backoff_micros(
                request.attempt,
                base_seconds=self._settings.retry_base_seconds,
                max_seconds=self._settings.retry_max_seconds,
                retry_after=error.retry_after,
            )
            return Retry(
                row_id=request.row_id, attempt=request.attempt, not_before=now_us() + delay
            )
        return _errored(request, error.error_type, error.message)


def _errored(request: ClaimedRequest, error_type: ErrorType, message: str) -> Finished:
    return Finished(
        row_id=request.row_id,
        attempt=request.attempt,
        state="errored",
        outcome=outcomes.encode(outcomes.errored(error_type, message)),
    )
