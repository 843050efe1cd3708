"""Pacers on the in-memory store: several workers share one budget, an upstream with
unknown limits is probed with one call, headers and refusals are learned from."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from batchyard.config import ModelConfig
from batchyard.engines.base import Answer
from batchyard.errors import EngineError
from batchyard.protocol.ratelimits import Quota, RateLimits
from batchyard.store.memory import MemoryStore
from batchyard.timeutil import now_us
from batchyard.worker.pacing import Pacer


def relayed(**limits: int) -> ModelConfig:
    return ModelConfig(name="relayed", engine="anthropic", concurrency=50, **limits)  # type: ignore[arg-type]


def answer(limits: RateLimits | None = None) -> Answer:
    return Answer(b"{}", input_tokens=10, output_tokens=5, limits=limits)


class CountingStore:
    """The in-memory rate-limit store, counting round trips."""

    def __init__(self) -> None:
        self._store = MemoryStore().rate_limits
        self.trips = 0

    async def update_rate_limit(self, key: str, change: Callable[[bytes | None], bytes]) -> None:
        self.trips += 1
        await asyncio.sleep(0.001)  # a database round trip: other lanes queue meanwhile
        await self._store.update_rate_limit(key, change)


async def count_admitted(pacers: list[Pacer], seconds: float) -> int:
    """Calls let out in ``seconds`` by 20 lanes per pacer, each answered at once."""
    admitted = 0
    deadline = time.monotonic() + seconds

    async def lane(pacer: Pacer) -> None:
        nonlocal admitted
        while True:
            ticket = await pacer.admit(40)
            if time.monotonic() > deadline:
                return
            admitted += 1
            pacer.settle(ticket, answer(), None)

    lanes = [asyncio.create_task(lane(p)) for p in pacers for _ in range(20)]
    await asyncio.wait(lanes, timeout=seconds + 1)
    for task in lanes:
        task.cancel()
    return admitted


async def test_three_workers_share_one_configured_budget() -> None:
    store = MemoryStore()
    pacers = [
        Pacer(relayed(rpm=1200), store.rate_limits, upstream=True, concurrency=50) for _ in range(3)
    ]
    admitted = await count_admitted(pacers, 1.0)
    # 20 a second with a burst of 10: at most 30 in 1 s for all three workers together
    # (fewer on a busy machine).
    assert 22 <= admitted <= 31


async def test_unknown_upstream_is_probed_then_paced_by_its_headers() -> None:
    pacer = Pacer(relayed(), CountingStore(), upstream=True, concurrency=50)
    probe, second, third = (asyncio.create_task(pacer.admit(40)) for _ in range(3))
    await asyncio.sleep(0.05)
    assert probe.done() and not second.done(), "the rest wait for the probe's answer"
    headers = RateLimits(seen_us=now_us(), quotas={"requests": Quota(600, 0, None)})
    pacer.settle(await probe, answer(headers), None)
    started = time.monotonic()
    pacer.settle(await second, answer(), None)
    # Learned: 10 a second, and the upstream said none remain, so each waits its turn.
    assert time.monotonic() - started >= 0.08
    pacer.settle(await third, answer(), None)
    assert time.monotonic() - started >= 0.18


async def test_an_upstream_without_headers_runs_at_full_concurrency_after_the_probe() -> None:
    pacer = Pacer(relayed(), MemoryStore().rate_limits, upstream=True, concurrency=50)
    pacer.settle(await pacer.admit(40), answer(), None)
    tickets = [await asyncio.wait_for(pacer.admit(40), 1) for _ in range(50)]
    blocked = asyncio.create_task(pacer.admit(40))
    await asyncio.sleep(0.05)
    assert not blocked.done(), "concurrency is still the cap"
    pacer.settle(tickets[0], answer(), None)
    await asyncio.wait_for(blocked, 1)


async def test_a_refusal_cuts_the_in_flight_cap_and_pauses() -> None:
    pacer = Pacer(relayed(), MemoryStore().rate_limits, upstream=True, concurrency=50)
    pacer.settle(await pacer.admit(40), answer(), None)
    refused = await pacer.admit(40)
    pacer.settle(refused, None, EngineError("rate_limit_error", "slow down", retry_after=0.2))
    started = time.monotonic()
    tickets = [await pacer.admit(40)]
    assert time.monotonic() - started >= 0.19, "paused for retry-after"
    while len(tickets) < 50:
        try:
            tickets.append(await asyncio.wait_for(pacer.admit(40), 0.1))
        except TimeoutError:
            break
    # 70% of 50, and the 10% a second it grows back meanwhile.
    assert 35 <= len(tickets) <= 38
    for ticket in tickets:
        pacer.settle(ticket, answer(), None)
    await asyncio.wait_for(pacer.admit(40), 1)


async def test_a_model_answered_here_is_not_probed() -> None:
    local = ModelConfig(name="sim", engine="simulated", concurrency=4)
    pacer = Pacer(local, MemoryStore().rate_limits, upstream=False, concurrency=16)
    tickets = [await asyncio.wait_for(pacer.admit(10), 1) for _ in range(4)]
    assert len(tickets) == 4


async def test_queued_lanes_get_their_turns_in_one_round_trip() -> None:
    store = CountingStore()
    pacer = Pacer(relayed(rpm=2400), store, upstream=True, concurrency=50)  # 40 a second, 20 held
    tickets = await asyncio.gather(*(pacer.admit(40) for _ in range(20)))
    assert len(tickets) == 20
    assert store.trips <= 3, "the first lane's trip took turns for the lanes behind it"
