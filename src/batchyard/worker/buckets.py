"""The arithmetic of pacing calls to a rate-limited model: token buckets and AIMD, no I/O.

One :class:`Buckets` value is the state of a model for the whole deployment (every worker
reads and writes the same one through :class:`~batchyard.store.protocols.RateLimitStore`,
see :mod:`batchyard.worker.pacing`). Each function here takes it and returns a new one, so
the store can apply them inside one transaction and tests can run them on a fake clock.

* **A bucket per limit** (requests, input tokens, output tokens, all tokens; per minute):
  refilled continuously at ``per_minute / 60`` a second, holding at most half a second's
  worth. A full minute's worth would let a minute's calls out in the first second, which APIs
  refuse: Anthropic enforces its per-minute limits over shorter intervals ("60 RPM may be
  enforced as 1 request per second"). Half of that presumed second is left for calls that
  reach the upstream out of step with when they were let out (another worker's call set off
  later, a busy event loop, a new connection): calls let out at the rate with a burst of
  half a second still arrive within the upstream's one second's worth when they are up to
  half a second apart in transit. It costs nothing at the steady rate, only half a first
  burst. A call is let out when every bucket has what it needs (a token need larger than the
  bucket only needs a full bucket); its need is then taken, and a bucket may go below zero,
  paying the debt back before the next call.
* **What a call needs**: one request; its input tokens as estimated beforehand (the body's
  bytes / 4, corrected by the answer's ``usage`` afterwards); and output tokens only *after*
  the answer, by its ``usage``: reserving ``max_tokens`` would cap throughput at the rare
  answer that uses them all, so the output bucket only has to be out of debt for a call to go.
* **AIMD**: a 429 or 529 cuts ``factor`` to 70% (at most once a second: one burst of
  refusals is one signal), which scales every refill rate and each worker's in-flight cap;
  ``factor`` then grows back by 10% of the full rate a second. A refusal also empties the
  buckets. Where no limit is known, it also pauses every call until its ``retry-after``, the
  only measure there is; where buckets exist, emptying them is the pause (``retry-after``
  comes in whole seconds, and a one-second stop of the whole deployment for each refusal
  costs more than the refusal), and the refused call itself still waits its ``retry-after``
  on its way back through the queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from batchyard.protocol.ratelimits import Dimension, RateLimits
from batchyard.timeutil import MICROS_PER_SECOND

#: AIMD: the multiplicative cut on overload, its floor, the additive recovery per second,
#: and how close together two refusals count as one.
CUT = 0.7
MIN_FACTOR = 1 / 16
RECOVERY_PER_SECOND = 0.1
CUT_SPACING_US = MICROS_PER_SECOND
#: How many seconds of its limit a bucket holds (see the module docstring).
BURST_SECONDS = 0.5


class Bucket(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    per_minute: int
    level: float

    @property
    def capacity(self) -> float:
        return max(1.0, self.per_minute / 60 * BURST_SECONDS)


class Buckets(msgspec.Struct, forbid_unknown_fields=True):
    """A model's pacing state, shared by every worker (stored as msgspec JSON)."""

    at_us: int = 0
    buckets: dict[Dimension, Bucket] = {}
    factor: float = 1.0
    cut_at_us: int = 0
    paused_until_us: int = 0

    @property
    def limited(self) -> bool:
        """Whether any call has to wait its turn here (a limit known, or backing off)."""
        return bool(self.buckets) or self.factor < 1.0 or self.paused_until_us > self.at_us


#: A call's needs or charges per dimension; a dimension not listed costs nothing.
Amounts = Mapping[Dimension, float]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Buckets)


def encode(state: Buckets) -> bytes:
    return _encoder.encode(state)


def decode(stored: bytes | None) -> Buckets:
    return _decoder.decode(stored) if stored else Buckets()


def advance(state: Buckets, now_us: int, configured: Mapping[Dimension, int]) -> Buckets:
    """``state`` at ``now_us``: buckets refilled, ``factor`` recovered, and the configured
    limits in force (a configured limit wins over one learned from headers).

    Time never goes back: a worker whose clock reads earlier than the last change (it read
    it before waiting for the row, or its clock lags) refills nothing, rather than making
    the next change refill the same interval twice."""
    now_us = max(now_us, state.at_us)
    elapsed = now_us - state.at_us if state.at_us else 0
    factor = min(1.0, state.factor + RECOVERY_PER_SECOND * elapsed / MICROS_PER_SECOND)
    buckets: dict[Dimension, Bucket] = {}
    for dimension, bucket in state.buckets.items():
        per_minute = configured.get(dimension, bucket.per_minute)
        rate = per_minute / 60 / MICROS_PER_SECOND * state.factor
        refilled = Bucket(per_minute, bucket.level + elapsed * rate)
        buckets[dimension] = Bucket(per_minute, min(refilled.capacity, refilled.level))
    for dimension, per_minute in configured.items():
        if dimension not in buckets:
            buckets[dimension] = Bucket(per_minute, Bucket(per_minute, 0).capacity)
    return msgspec.structs.replace(state, at_us=now_us, buckets=buckets, factor=factor)


def take(state: Buckets, need: Amounts) -> tuple[Buckets, int]:
    """Let one call out if every bucket has what it needs: ``(state after, 0)``; else
    ``(state, microseconds until it will have)``. ``state`` must be :func:`advance`d."""
    wait = max(0, state.paused_until_us - state.at_us)
    for dimension, bucket in state.buckets.items():
        wanted = min(need.get(dimension, 0.0), bucket.capacity)
        if bucket.level < wanted:
            rate = bucket.per_minute / 60 / MICROS_PER_SECOND * state.factor
            wait = max(wait, math.ceil((wanted - bucket.level) / rate))
    if wait:
        return state, wait
    return charge(state, need), 0


def take_up_to(state: Buckets, need: Amounts, most: int) -> tuple[Buckets, int, int]:
    """Up to ``most`` calls of ``need`` at once (for the lanes of a worker that wait, in one
    round trip to the store): ``(state after, taken, 0)``, or ``(state, 0, wait)`` as
    :func:`take` when not even one may go."""
    state, wait = take(state, need)
    if wait:
        return state, 0, wait
    taken = 1
    while taken < most:
        after, again = take(state, need)
        if again:
            break
        state, taken = after, taken + 1
    return state, taken, 0


def charge(state: Buckets, amounts: Amounts) -> Buckets:
    """Take ``amounts`` from the buckets (a negative amount gives back, up to capacity)."""
    if not amounts:
        return state
    buckets = {
        dimension: Bucket(
            bucket.per_minute,
            min(bucket.capacity, bucket.level - amounts.get(dimension, 0.0)),
        )
        for dimension, bucket in state.buckets.items()
    }
    return msgspec.structs.replace(state, buckets=buckets)


def learn(state: Buckets, limits: RateLimits, configured: Mapping[Dimension, int]) -> Buckets:
    """Limits an upstream reported with an answer: a limit nobody configured becomes a
    bucket, first filled to what the upstream said remains. Known buckets keep their level:
    an answer's ``remaining`` is as old as its call, and our own count is fresher."""
    buckets = dict(state.buckets)
    for dimension, quota in limits.quotas.items():
        if dimension in configured or quota.limit <= 0:
            continue
        known = buckets.get(dimension)
        if known is None:
            fresh = Bucket(quota.limit, 0)
            buckets[dimension] = Bucket(quota.limit, min(fresh.capacity, quota.remaining))
        elif known.per_minute != quota.limit:
            buckets[dimension] = Bucket(quota.limit, min(known.level, quota.remaining))
    return msgspec.structs.replace(state, buckets=buckets)


def overloaded(state: Buckets, retry_after: float | None) -> Buckets:
    """A 429 or 529: cut ``factor`` (once per :data:`CUT_SPACING_US`), empty the buckets,
    or, with none, pause until ``retry_after`` seconds from ``state.at_us`` (it must be
    advanced)."""
    now = state.at_us
    factor, cut_at = state.factor, state.cut_at_us
    if now - cut_at >= CUT_SPACING_US:
        factor, cut_at = max(MIN_FACTOR, factor * CUT), now
    pause = now if state.buckets else now + int((retry_after or 0.0) * MICROS_PER_SECOND)
    buckets = {d: Bucket(b.per_minute, min(b.level, 0.0)) for d, b in state.buckets.items()}
    return msgspec.structs.replace(
        state,
        buckets=buckets,
        factor=factor,
        cut_at_us=cut_at,
        paused_until_us=max(state.paused_until_us, pause),
    )
