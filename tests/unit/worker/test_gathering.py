"""Gathering queued requests into upstream Message Batches: limits, headers, waiting."""

from __future__ import annotations

from batchyard.store.records import Candidate, Headers
from batchyard.worker.gathering import Limits, plan_batches

SECOND = 1_000_000
NOW = 1_000 * SECOND
BETA: Headers = (("anthropic-beta", "files-api-2025-04-14"),)


def candidates(
    n: int, *, size: int = 100, headers: Headers = (), since: int = NOW, start: int = 1
) -> list[Candidate]:
    return [Candidate(start + i, size, headers, since) for i in range(n)]


def plan(items: list[Candidate], limit: int = 1000, **overrides: int) -> list[list[int]]:
    values = {"max_requests": 100_000, "max_bytes": 256_000_000, "max_wait": 60 * SECOND}
    values.update(overrides)
    return plan_batches(items, now=NOW, limits=Limits(**values), offered_limit=limit)


def test_a_young_partial_batch_waits_and_an_old_one_goes() -> None:
    assert plan(candidates(10)) == []
    old = candidates(10, since=NOW - 60 * SECOND)
    assert plan(old) == [[c.row_id for c in old]]


def test_cut_at_max_requests_and_the_full_last_batch_goes_at_once() -> None:
    groups = plan(candidates(10), max_requests=5)
    assert [len(g) for g in groups] == [5, 5]
    # The partial tail waits, the full head goes.
    assert [len(g) for g in plan(candidates(12), max_requests=5)] == [5, 5]


def test_cut_so_no_create_body_passes_max_bytes() -> None:
    items = candidates(10, size=1000)
    groups = plan(items, max_bytes=3500, max_wait=0)
    assert [len(g) for g in groups] == [3, 3, 3, 1]
    assert [row for g in groups for row in g] == [c.row_id for c in items], "order kept"
    # 100k requests of 5 KB: 256 MB cuts before the request limit does.
    big = candidates(100_000, size=5_000)
    sizes = [len(g) for g in plan(big, limit=200_000, max_wait=0)]
    assert sum(sizes) == 100_000 and max(sizes) < 100_000
    assert all(n * (5_000 + 64) + 16 <= 256_000_000 for n in sizes)


def test_a_request_too_large_for_any_batch_goes_alone() -> None:
    items = [*candidates(2, size=10), Candidate(9, 10_000, (), NOW), *candidates(2, start=20)]
    assert plan(items, max_bytes=1000, max_wait=0) == [[1, 2], [9], [20, 21]]


def test_only_requests_with_the_same_headers_share_a_batch() -> None:
    old = NOW - 120 * SECOND
    plain = candidates(3, since=old)
    beta = candidates(2, headers=BETA, since=old, start=10)
    mixed = [plain[0], beta[0], plain[1], beta[1], plain[2]]
    assert plan(mixed) == [[1, 2, 3], [10, 11]]
    # Each group waits on its own oldest request.
    young_beta = candidates(2, headers=BETA, start=10)
    assert plan([*plain, *young_beta]) == [[1, 2, 3]]


def test_no_waiting_when_more_are_queued_than_one_gather_takes() -> None:
    assert plan(candidates(10), limit=10) == [list(range(1, 11))]


def test_params_growing_on_the_way_count_against_max_bytes() -> None:
    items = candidates(4, size=100)
    assert [len(g) for g in plan(items, max_bytes=16 + 2 * 164, max_wait=0)] == [2, 2]
    assert [len(g) for g in plan(items, max_bytes=16 + 2 * 164, max_wait=0, growth=1)] == [1] * 4
