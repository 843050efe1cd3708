"""Who gets a model's capacity: the order in which a claim takes queued requests.

A claim of ``limit`` requests does not take the oldest ones: a workspace's 100k batch would
hold every worker for hours while another workspace's 20 requests wait behind it. Instead
every claim shares out what it takes:

1. **Ready batches** are the open ones with queued requests due now for the claimed models;
   at most :data:`MAX_READY_BATCHES` of them take part in one claim (picked at random when
   there are more, so every batch is in most claims).
2. Each ready batch **offers** its next ``limit`` queued requests, oldest first: its turns
   1, 2, 3, ...
3. Within a workspace, the offers of its batches are merged into the workspace's **rounds**:
   higher ``priority`` batches first; batches of equal priority alternate, one request each
   per round (turn, then batch age).
4. Across workspaces, the claim takes round 1 of every workspace, then round 2, and so on
   (ties within a round in random order) until it has ``limit`` requests.

So each workspace with work gets an equal share of every claim, a batch an equal share of its
workspace's, and ``priority`` reorders only a workspace's own work: no tenant can starve
another with it. A claim that finds one batch takes its oldest ``limit`` requests, as a FIFO
queue would. The SQL stores compute this order in the claim statement itself
(:mod:`batchyard.store.queue`); the in-memory store calls :func:`fair_pick`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple, Protocol, TypeVar

#: How many ready batches one claim looks at, bounding its work to
#: ``MAX_READY_BATCHES x limit`` candidate rows.
MAX_READY_BATCHES = 64


class Offer(NamedTuple):
    """A queued request a ready batch offers to a claim."""

    row_id: int
    batch_seq: int
    workspace_id: int
    priority: int


def fair_pick(offers: Sequence[Offer], limit: int, rng: random.Random) -> list[Offer]:
    """The first ``limit`` of ``offers`` in the order described above; each batch's offers
    must come oldest first."""
    turns: defaultdict[int, int] = defaultdict(int)
    by_workspace: defaultdict[int, list[tuple[int, int, int, Offer]]] = defaultdict(list)
    for offer in offers:
        turns[offer.batch_seq] += 1
        turn = turns[offer.batch_seq]
        by_workspace[offer.workspace_id].append((-offer.priority, turn, offer.batch_seq, offer))
    tie_breaks = {workspace: rng.random() for workspace in by_workspace}
    ranked = [
        (round_, tie_breaks[workspace], offer)
        for workspace, entries in by_workspace.items()
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
