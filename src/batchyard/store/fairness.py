"""Who gets a model's capacity: the order in which a claim takes queued requests.

A claim of ``limit`` requests does not take the oldest ones: a workspace's 100k batch would
hold every worker for hours while another workspace's 20 requests wait behind it. Instead
every claim shares out what it takes:

1. **Ready batches** are the open ones with a queued request due now for the claimed models.
   Within a workspace only those of its highest ``priority`` take part: its lower-priority
   batches wait until those have nothing due.
2. At most :data:`MAX_READY_BATCHES` ready batches take part in one claim, chosen one of each
   workspace in turn (at random within a workspace), so a workspace with many batches gets
   no more places than one with a single batch.
3. **Shares**: each of the ``W`` workspaces with a ready batch gets ``limit / W``, split evenly
   between its ready batches; a batch offers its oldest due requests, up to its share (plus
   one, for rounding).
4. The offers are ranked in **rounds**: a workspace's batches alternate, one request each
   per round, and the claim takes round 1 of every workspace, then round 2, and so on (ties
   within a round in random order) until it has ``limit`` requests.

So each workspace with work gets an equal share of every claim and a batch an equal share of
its workspace's; ``priority`` reorders only a workspace's own work, so no tenant can starve
another with it. A claim that finds one batch takes its oldest ``limit`` requests, as a FIFO
queue would. A claim may come out short while more is queued (a batch with fewer requests
than its share, rows another claimer holds): the dispatcher claims again.

The SQL stores compute this in the claim statement itself (:mod:`batchyard.store.queue`); the
in-memory store calls :func:`choose_ready` and :func:`fair_pick`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple, Protocol, TypeVar

#: How many ready batches one claim looks at, bounding its work.
MAX_READY_BATCHES = 64


class ReadyBatch(NamedTuple):
    seq: int
    workspace_id: int
    priority: int


class Offer(NamedTuple):
    """A queued request a ready batch offers to a claim."""

    row_id: int
    batch_seq: int
    workspace_id: int


def choose_ready(
    ready: Sequence[ReadyBatch], limit: int, rng: random.Random
) -> list[tuple[ReadyBatch, int]]:
    """The batches that take part in a claim of ``limit`` (rules 1-2), each with its share
    (rule 3)."""
    by_workspace: defaultdict[int, list[ReadyBatch]] = defaultdict(list)
    for batch in ready:
        by_workspace[batch.workspace_id].append(batch)
    picks = []
    for batches in by_workspace.values():
        top = max(batch.priority for batch in batches)
        tier = [batch for batch in batches if batch.priority == top]
        rng.shuffle(tier)
        picks += [(pick, rng.random(), batch) for pick, batch in enumerate(tier)]
    picks.sort(key=lambda entry: entry[:2])
    chosen = [batch for *_, batch in picks[:MAX_READY_BATCHES]]
    per_workspace: defaultdict[int, int] = defaultdict(int)
    for batch in chosen:
        per_workspace[batch.workspace_id] += 1
    shares = []
    for batch in chosen:
        ways = per_workspace[batch.workspace_id] * len(per_workspace)
        shares.append((batch, (limit + ways - 1) // ways + 1))
    return shares


def fair_pick(offers: Sequence[Offer], limit: int, rng: random.Random) -> list[Offer]:
    """The first ``limit`` of ``offers`` in round order (rule 4); each batch's offers must
    come oldest first."""
    turns: defaultdict[int, int] = defaultdict(int)
    by_workspace: defaultdict[int, list[tuple[int, int, Offer]]] = defaultdict(list)
    for offer in offers:
        turns[offer.batch_seq] += 1
        by_workspace[offer.workspace_id].append((turns[offer.batch_seq], offer.batch_seq, offer))
    ranked = [
        (round_, rng.random(), offer)
        for entries in by_workspace.values()
        for round_, (*_, offer) in enumerate(sorted(entries), start=1)
    ]
    ranked.sort(key=lambda entry: entry[:2])
    return [offer for *_, offer in ranked[:limit]]


class _InBatch(Protocol):
    @property
    def row_id(self) -> int: ...
    @property
    def batch_seq(self) -> int: ...


InBatchT = TypeVar("InBatchT", bound=_InBatch)


def interleaved(claimed: Sequence[InBatchT]) -> list[InBatchT]:
    """``claimed`` in the order a worker should start them: one of each batch in turn, each
    batch's oldest first, so a small batch's share does not wait behind a big one's within
    the claim either."""
    turns: defaultdict[int, int] = defaultdict(int)
    keyed = []
    for item in sorted(claimed, key=lambda item: item.row_id):
        turns[item.batch_seq] += 1
        keyed.append((turns[item.batch_seq], item.batch_seq, item))
    keyed.sort(key=lambda entry: entry[:2])
    return [item for *_, item in keyed]
