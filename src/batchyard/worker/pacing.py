"""Pacing each model's calls to its rate limits, for the whole deployment at once.

Engines only report (an :class:`~batchyard.engines.base.Answer`'s or an
:class:`~batchyard.errors.EngineError`'s ``limits``, and usage); a :class:`Pacer` per model
and worker decides when the next call may go, with the arithmetic of
:mod:`batchyard.worker.buckets`. Limits come from the model's config (``rpm``,
``input_tpm``, ``output_tpm``) or, where none is configured, from what the upstream's
headers say; a 429 or 529 backs off (AIMD) either way. Retries are not made here: a
refused call goes back to the queue with backoff like any retryable error.

**One budget for the deployment.** The buckets of a model live in one row of the store's
``rate_limits`` table, which every worker rewrites under a row lock on each call it lets out,
so the sum of every worker's calls keeps to the limit whatever the number of workers, and a
worker that joins or dies changes nothing. The alternative, each of N workers taking 1/N of
the budget, needs every worker to know N at every moment (a membership table with
heartbeats), wastes the share of a worker that has nothing to do, and overshoots while a dead
worker is still counted. The cost is one short write transaction per call let out while a
limit is known (a few hundred a second is nothing for PostgreSQL, and SQLite serves one
machine). Within a worker, one lane at a time goes to the store, taking turns for the lanes
queued behind it as well (as many as the buckets allow), so waiting lanes neither hammer the
row nor wait for one commit each: a commit that takes as long as the gap between two calls
(SQLite syncs each one to disk) would otherwise cap the rate. If the store cannot be reached
the call goes unpaced: pacing must not stop work, and the upstream's own refusals still slow
things down.

**An upstream whose limits nobody knows yet** (nothing configured, nothing learned by any
worker): its first call goes out alone, and the rest wait for its answer, whose headers may
state the limits; without them the model runs at its full ``concurrency`` and no further
store round trips, until a 429 or 529 says otherwise. A model answered in this process (the
local or simulated engine) has no headers to wait for, so it starts at full concurrency.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from batchyard.config import ModelConfig
from batchyard.engines.base import Answer
from batchyard.errors import ApiError, EngineError
from batchyard.protocol.ratelimits import Dimension, RateLimits
from batchyard.store.protocols import RateLimitStore
from batchyard.timeutil import MICROS_PER_SECOND, now_us
from batchyard.worker import buckets
from batchyard.worker.buckets import Buckets

logger = logging.getLogger("batchyard.worker")

#: Input tokens estimated per byte of a request's JSON body before the answer says.
TOKENS_PER_BYTE = 0.25
_OVERLOAD_TYPES = frozenset({"rate_limit_error", "overloaded_error"})


def configured_limits(config: ModelConfig) -> dict[Dimension, int]:
    limits: dict[Dimension, int | None] = {
        "requests": config.rpm,
        "input_tokens": config.input_tpm,
        "output_tokens": config.output_tpm,
    }
    return {dimension: limit for dimension, limit in limits.items() if limit is not None}


@dataclass(frozen=True, slots=True)
class Ticket:
    """A call let out, to be :meth:`Pacer.settle`\\ d once it is answered or failed."""

    estimated_input: float
    probe: bool


class Pacer:
    """Lets one model's calls out of this worker at the pace of the model's limits."""

    def __init__(
        self, config: ModelConfig, store: RateLimitStore, *, upstream: bool, concurrency: int
    ) -> None:
        self._upstream = upstream
        self._key = f"model:{config.name}"
        self._configured = configured_limits(config)
        self._concurrency = concurrency
        self._store = store
        #: One lane at a time negotiates with the store; the others queue here, in order.
        self._door = asyncio.Lock()
        #: The shared state as of this worker's last round trip (``None``: none yet).
        self._state: Buckets | None = None
        #: What happened since the last round trip, applied with the next one: token counts
        #: corrected by answers, the newest limits reported, and a refusal's retry-after.
        self._charges: dict[Dimension, float] = {}
        self._seen: RateLimits | None = None
        self._refused: float | None = None
        self._probe: asyncio.Event | None = None
        self._in_flight = 0
        self._freed = asyncio.Event()
        #: Lanes queued at the door, and turns already taken from the shared buckets for
        #: them (each as a call of ``_granted_estimate`` input tokens) by the lane before.
        self._queued = 0
        self._granted = 0
        self._granted_estimate = 0.0

    async def admit(self, body_size: int) -> Ticket:
        """Wait until a call with a body of ``body_size`` bytes may go out."""
        estimate = body_size * TOKENS_PER_BYTE
        need: dict[Dimension, float] = {
            "requests": 1.0,
            "input_tokens": estimate,
            "tokens": estimate,
        }
        idle_door = not self._door.locked() and self._probe is None
        if idle_door and not self._needs_round_trip() and self._room():
            self._in_flight += 1  # nothing to wait for: no lock, no await
            return Ticket(estimate, probe=False)
        self._queued += 1
        try:
            await self._door.acquire()
        finally:
            self._queued -= 1
        try:
            if self._probe is not None:
                await self._probe.wait()
            first = self._state is None
            if self._granted and self._needs_round_trip():
                self._granted -= 1  # taken by the lane before: only the estimate differs
                self._add("input_tokens", estimate - self._granted_estimate)
                self._add("tokens", estimate - self._granted_estimate)
            else:
                await self._take_turn(need)
            probe = first and self._upstream and not (self._state and self._state.limited)
            if probe:
                self._probe = asyncio.Event()
            await self._slot()
        finally:
            self._door.release()
        return Ticket(estimate, probe)

    def settle(self, ticket: Ticket, answer: Answer | None, error: ApiError | None) -> None:
        """The call of ``ticket`` ended with ``answer`` or ``error`` (neither: cancelled)."""
        self._in_flight -= 1
        self._freed.set()
        if ticket.probe and self._probe is not None:
            self._probe.set()
            self._probe = None
        limits = answer.limits if answer is not None else None
        if isinstance(error, EngineError):
            limits = error.limits
            if error.error_type in _OVERLOAD_TYPES:
                self._refused = max(self._refused or 0.0, error.retry_after or 0.0)
                self._granted = 0  # turns taken before the refusal are not to be trusted
        newest = self._seen is None or (limits is not None and limits.seen_us >= self._seen.seen_us)
        if limits is not None and limits.quotas and newest:
            self._seen = limits
        if self._state is None or not self._state.limited:
            return  # nothing to count against
        if answer is not None:
            corrected = answer.input_tokens - ticket.estimated_input
            self._add("input_tokens", corrected)
            self._add("output_tokens", answer.output_tokens)
            self._add("tokens", corrected + answer.output_tokens)
        else:  # a call refused or failed: its tokens were not used
            self._add("input_tokens", -ticket.estimated_input)
            self._add("tokens", -ticket.estimated_input)

    def _add(self, dimension: Dimension, amount: float) -> None:
        self._charges[dimension] = self._charges.get(dimension, 0.0) + amount

    def _needs_round_trip(self) -> bool:
        return (
            self._state is None
            or self._state.limited
            or self._seen is not None
            or self._refused is not None
        )

    async def _take_turn(self, need: dict[Dimension, float]) -> None:
        """Round trips to the store until this call may go (none while nothing limits it),
        taking turns for the lanes queued behind as well."""
        while self._needs_round_trip():
            taken, wait = await self._round_trip(need)
            if taken:
                self._granted, self._granted_estimate = taken - 1, need["input_tokens"]
                return
            await asyncio.sleep(wait / MICROS_PER_SECOND)

    async def _round_trip(self, need: dict[Dimension, float]) -> tuple[int, int]:
        """Apply what happened since the last trip to the shared state and take calls of
        ``need`` for this lane and those queued behind it by the time the row is held:
        ``(taken, 0)``, or ``(0, microseconds to wait)``."""
        charges, seen, refused = self._charges, self._seen, self._refused
        self._charges, self._seen, self._refused = {}, None, None
        configured = self._configured
        outcome: list[tuple[Buckets, int, int]] = []

        def change(stored: bytes | None) -> bytes:
            # The clock is read with the row held: another worker may have changed it
            # while this one waited.
            state = buckets.advance(buckets.decode(stored), now_us(), configured)
            if seen is not None:
                state = buckets.learn(state, seen, configured)
            state = buckets.charge(state, charges)
            if refused is not None:
                state = buckets.overloaded(state, refused)
            # Turns for others only from buckets: with none, this call may be a probe.
            most = 1 + self._queued if state.buckets else 1
            outcome[:] = [buckets.take_up_to(state, need, most)]
            return buckets.encode(outcome[0][0])

        try:
            await self._store.update_rate_limit(self._key, change)
        except Exception:
            logger.exception("%s: pacing state unavailable; this call goes unpaced", self._key)
            if self._state is None:
                self._state = Buckets()
            return 1, 0
        self._state, taken, wait = outcome[0]
        return taken, wait

    async def _slot(self) -> None:
        """Wait for room under this worker's in-flight cap: ``concurrency`` scaled by the
        AIMD factor (the only brake where no limit is known)."""
        while not self._room():
            self._freed.clear()
            await self._freed.wait()
        self._in_flight += 1

    def _room(self) -> bool:
        factor = self._state.factor if self._state is not None else 1.0
        return self._in_flight < max(1, math.ceil(self._concurrency * factor))
