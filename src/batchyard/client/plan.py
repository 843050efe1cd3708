"""What a run will send: each row's request, batches cut under the server's limits, and the
token and cost estimate shown before anything is submitted.

Requests are encoded once, up front: the same bytes are counted, measured against the body
limit, fingerprinted for resuming and sent, so a resumed run rebuilds byte-identical bodies
(and ``Idempotency-Key`` replays match them).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from batchyard.client.http import BatchApi
from batchyard.client.prompts import Template
from batchyard.client.tables import Table

#: Anthropic's limits on one batch: 100,000 requests and 256 MB of body.
MAX_BATCH_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1000 * 1000
#: Rows whose prompts are counted with ``count_tokens`` when there are more; the rest are
#: extrapolated from their average.
TOKEN_SAMPLE = 50
_COUNT_CONCURRENCY = 8
_ENVELOPE = (b'{"requests":[', b"]}")


class _UserMessage(msgspec.Struct):
    content: str
    role: str = "user"


class _Params(msgspec.Struct, omit_defaults=True):
    model: str
    max_tokens: int
    messages: list[_UserMessage]
    system: str | None = None


class _CountParams(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[_UserMessage]
    system: str | None = None


class _Item(msgspec.Struct):
    custom_id: str
    params: msgspec.Raw


_encoder = msgspec.json.Encoder()
_params_decoder = msgspec.json.Decoder(_Params)


@dataclass(frozen=True)
class Requests:
    """Every row's request, encoded: ``items[i]`` is row ``i``'s ``{"custom_id", "params"}``."""

    custom_ids: list[str]
    params: list[bytes]
    items: list[bytes]

    @property
    def fingerprint(self) -> str:
        """Names this exact set of requests: a resumed run must be sending the same ones."""
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(len(item).to_bytes(8, "big"))
            digest.update(item)
        return digest.hexdigest()


def build_requests(
    table: Table,
    custom_ids: list[str],
    template: Template,
    *,
    model: str,
    max_tokens: int,
    system: str | None,
) -> Requests:
    params = [
        _encoder.encode(
            _Params(
                model=model,
                max_tokens=max_tokens,
                messages=[_UserMessage(template.render(row))],
                system=system or None,
            )
        )
        for row in table.rows
    ]
    items = [
        _encoder.encode(_Item(custom_id, msgspec.Raw(body)))
        for custom_id, body in zip(custom_ids, params, strict=True)
    ]
    return Requests(custom_ids, params, items)


def split(
    rows: Sequence[int],
    requests: Requests,
    *,
    max_requests: int = MAX_BATCH_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[list[int]]:
    """``rows`` cut, in order, into batches of at most ``max_requests`` and ``max_bytes``."""
    room = max_bytes - sum(map(len, _ENVELOPE))
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for row in rows:
        size = len(requests.items[row]) + 1  # its comma
        if size > room:
            raise ValueError(
                f"row {row + 1}: its request is {size:,} bytes, more than one batch may hold "
                f"({max_bytes:,} bytes)"
            )
        if current and (len(current) == max_requests or used + size > room):
            batches.append(current)
            current, used = [], 0
        current.append(row)
        used += size
    if current:
        batches.append(current)
    return batches


def batch_body(requests: Requests, rows: Sequence[int]) -> bytes:
    """The create body for ``rows``: the pre-encoded items, joined."""
    return _ENVELOPE[0] + b",".join(requests.items[row] for row in rows) + _ENVELOPE[1]


@dataclass(frozen=True)
class TokenEstimate:
    input_tokens: int
    #: Rows actually counted; the estimate is exact when it is every row.
    counted: int
    rows: int

    @property
    def exact(self) -> bool:
        return self.counted == self.rows


async def estimate_input_tokens(
    api: BatchApi, requests: Requests, *, sample: int = TOKEN_SAMPLE
) -> TokenEstimate:
    """Count a sample of rows spread evenly over the input, and scale to every row."""
    total = len(requests.params)
    if total == 0:
        return TokenEstimate(0, 0, 0)
    chosen = sorted({index * total // min(sample, total) for index in range(min(sample, total))})
    gate = asyncio.Semaphore(_COUNT_CONCURRENCY)

    async def count(row: int) -> int:
        asked = _params_decoder.decode(requests.params[row])
        body = _encoder.encode(_CountParams(asked.model, asked.messages, asked.system))
        async with gate:
            return await api.count_tokens(body)

    counts = await asyncio.gather(*(count(row) for row in chosen))
    return TokenEstimate(round(sum(counts) * total / len(chosen)), len(chosen), total)
