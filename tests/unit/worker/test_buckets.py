"""The pacing arithmetic on a fake clock: buckets, learning from headers, AIMD."""

from __future__ import annotations

import pytest

from batchyard.protocol.ratelimits import Quota, RateLimits
from batchyard.worker import buckets
from batchyard.worker.buckets import Bucket, Buckets

SECOND = 1_000_000
T0 = 1_000 * SECOND


def calls_let_out(state: Buckets, seconds: float, configured: dict[str, int]) -> int:
    """How many one-request calls go out in ``seconds``, asking every millisecond."""
    count = 0
    for tick in range(int(seconds * 1000)):
        state = buckets.advance(state, T0 + tick * 1000, configured)  # type: ignore[arg-type]
        state, wait = buckets.take(state, {"requests": 1})
        count += wait == 0
    return count


def test_a_configured_rpm_lets_out_one_second_of_burst_then_the_rate() -> None:
    # 600 rpm: 10 a second, a bucket of 5. Over 0-5 s: the 5 at once, then 10 a second.
    assert calls_let_out(Buckets(), 5.001, {"requests": 600}) == 5 + 50


def test_a_token_need_bigger_than_the_bucket_waits_for_a_full_bucket_and_goes_into_debt() -> None:
    state = buckets.advance(Buckets(), T0, {"input_tokens": 12000})  # 200 a second, 100 held
    state, wait = buckets.take(state, {"input_tokens": 250})
    assert wait == 0 and state.buckets["input_tokens"].level == -150
    state = buckets.advance(state, T0 + SECOND // 2, {"input_tokens": 12000})
    state, wait = buckets.take(state, {"input_tokens": 10})
    assert wait == pytest.approx(0.3 * SECOND, rel=0.01)  # -50 → 10 at 200/s


def test_a_worker_takes_turns_for_its_queued_lanes_as_far_as_the_buckets_allow() -> None:
    state = buckets.advance(Buckets(), T0, {"requests": 600, "input_tokens": 6000})
    state, taken, wait = buckets.take_up_to(state, {"requests": 1, "input_tokens": 20}, 8)
    assert (taken, wait) == (2, 0)  # 5 requests held, but 50 input tokens: 20 + 20 (+ debt)
    state = buckets.charge(state, {"input_tokens": -100})
    state, taken, wait = buckets.take_up_to(state, {"requests": 1, "input_tokens": 1}, 8)
    assert (taken, wait) == (3, 0)  # the requests left
    state, taken, wait = buckets.take_up_to(state, {"requests": 1}, 8)
    assert taken == 0 and wait == SECOND // 10


def test_output_is_charged_after_and_only_debt_holds_calls_back() -> None:
    state = buckets.advance(Buckets(), T0, {"output_tokens": 1200})  # 20 a second, 10 held
    state, wait = buckets.take(state, {"requests": 1})
    assert wait == 0
    state = buckets.charge(state, {"output_tokens": 30})  # the answer used 30
    state, wait = buckets.take(state, {"requests": 1})
    assert wait == SECOND  # 10 - 30 = -20: a second of debt


def test_corrections_give_back_but_not_beyond_the_bucket() -> None:
    state = buckets.advance(Buckets(), T0, {"input_tokens": 600})
    state = buckets.charge(state, {"input_tokens": -1000})
    assert state.buckets["input_tokens"].level == 5


def test_learned_limits_start_at_what_remains_and_configured_ones_win() -> None:
    seen = RateLimits(
        seen_us=T0,
        quotas={"requests": Quota(3000, 7, None), "output_tokens": Quota(90000, 90000, None)},
    )
    state = buckets.learn(buckets.advance(Buckets(), T0, {}), seen, {})
    assert state.buckets["requests"] == Bucket(3000, 7)
    assert state.buckets["output_tokens"] == Bucket(90000, 750)  # half a second's worth
    configured = buckets.learn(
        buckets.advance(Buckets(), T0, {"requests": 60}), seen, {"requests": 60}
    )
    assert configured.buckets["requests"] == Bucket(60, 1)
    # A later answer does not reset a known bucket's level (our own count is fresher).
    again = buckets.learn(state, seen, {})
    assert again.buckets == state.buckets


def test_aimd_cuts_once_per_burst_empties_the_buckets_and_recovers_additively() -> None:
    state = buckets.advance(Buckets(), T0, {"requests": 600})
    state = buckets.overloaded(state, retry_after=2.0)
    state = buckets.overloaded(state, retry_after=1.0)  # the same burst: one cut
    assert state.factor == 0.7 and state.buckets["requests"].level == 0
    # With buckets, emptying them is the pause: one call's worth at the cut rate (7 a second).
    _, wait = buckets.take(state, {"requests": 1})
    assert wait == pytest.approx(SECOND / 7, abs=1)
    later = buckets.advance(state, T0 + SECOND, {"requests": 600})
    assert later.factor == pytest.approx(0.8)
    assert later.buckets["requests"].level == pytest.approx(5)  # refilled (7) to capacity
    again = buckets.overloaded(later, None)
    assert again.factor == pytest.approx(0.56)
    floor = Buckets(at_us=T0, factor=buckets.MIN_FACTOR)
    assert buckets.overloaded(floor, None).factor == buckets.MIN_FACTOR
    assert buckets.advance(Buckets(at_us=T0, factor=0.5), T0 + 60 * SECOND, {}).factor == 1.0


def test_with_no_limit_known_a_refusal_pauses_until_its_retry_after() -> None:
    state = buckets.overloaded(buckets.advance(Buckets(), T0, {}), retry_after=2.0)
    assert state.paused_until_us == T0 + 2 * SECOND and state.limited
    _, wait = buckets.take(state, {"requests": 1})
    assert wait == 2 * SECOND


def test_a_clock_reading_older_than_the_state_refills_nothing_twice() -> None:
    state = buckets.advance(Buckets(), T0, {"requests": 600})
    state, _ = buckets.take(state, {"requests": 5})
    late = buckets.advance(state, T0 + SECOND // 10, {"requests": 600})  # +1
    stale = buckets.advance(late, T0, {"requests": 600})  # read before `late`
    assert stale.at_us == late.at_us and stale.buckets == late.buckets
    again = buckets.advance(stale, T0 + SECOND // 5, {"requests": 600})  # +1 more, not +2
    assert again.buckets["requests"].level == pytest.approx(2)


def test_nothing_known_is_not_limited_and_round_trips_through_bytes() -> None:
    assert not buckets.advance(buckets.decode(None), T0, {}).limited
    state = buckets.advance(Buckets(), T0, {"requests": 60, "input_tokens": 1000})
    assert state.limited
    assert buckets.decode(buckets.encode(state)) == state
