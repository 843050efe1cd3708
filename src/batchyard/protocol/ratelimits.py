"""Rate-limit state as servers report it in response headers, read and written here.

Anthropic sends ``anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,
remaining,reset}`` (``reset`` in RFC 3339) on every answer, and ``retry-after`` (seconds) on a
429. OpenAI-compatible servers send ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``
(``reset`` as a duration such as ``6m0s`` or ``20ms``). Both are read into one
:class:`RateLimits`, so whatever paces calls to an upstream never looks at a header name; an
engine that enforces a limit itself (the simulated one) writes it back out in Anthropic's form.

Pure data, no I/O: times are integer microseconds since the epoch, passed in by the caller.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from batchyard.timeutil import MICROS_PER_SECOND, rfc3339

#: What a limit counts: requests, input tokens, output tokens, or all tokens together (what
#: OpenAI-compatible servers limit).
Dimension = Literal["requests", "input_tokens", "output_tokens", "tokens"]
DIMENSIONS: tuple[Dimension, ...] = ("requests", "input_tokens", "output_tokens", "tokens")


@dataclass(frozen=True, slots=True)
class Quota:
    """One limit per minute, what is left of it, and when it is whole again (if said)."""

    limit: int
    remaining: int
    reset_us: int | None = None


@dataclass(frozen=True, slots=True)
class RateLimits:
    """What a server said about its limits on one answer or refusal, read at ``seen_us``."""

    seen_us: int
    quotas: Mapping[Dimension, Quota]
    #: Seconds to wait before trying again (``retry-after``), on a refusal.
    retry_after: float | None = None

    def headers(self) -> dict[str, str]:
        """The ``anthropic-ratelimit-*`` headers (and ``retry-after``) of this state."""
        out: dict[str, str] = {}
        for dimension, quota in self.quotas.items():
            prefix = f"anthropic-ratelimit-{dimension.replace('_', '-')}"
            out[f"{prefix}-limit"] = str(quota.limit)
            out[f"{prefix}-remaining"] = str(max(0, quota.remaining))
            if quota.reset_us is not None:
                out[f"{prefix}-reset"] = rfc3339(quota.reset_us).replace(".000000Z", "Z")
        if self.retry_after is not None:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after)))
        return out

    def openai_headers(self, now_us: int) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (and
        ``retry-after``) of this state, at ``now_us``: the dimensions OpenAI has (it limits
        all tokens together, not input and output apart), ``reset`` as a duration."""
        out: dict[str, str] = {}
        for dimension in ("requests", "tokens"):
            if (quota := self.quotas.get(dimension)) is None:
                continue
            out[f"x-ratelimit-limit-{dimension}"] = str(quota.limit)
            out[f"x-ratelimit-remaining-{dimension}"] = str(max(0, quota.remaining))
            if quota.reset_us is not None:
                wait = max(0, quota.reset_us - now_us) / MICROS_PER_SECOND
                out[f"x-ratelimit-reset-{dimension}"] = _duration(wait)
        if self.retry_after is not None:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after)))
        return out


def read_rate_limits(headers: Mapping[str, str], now_us: int) -> RateLimits | None:
    """The limits a response's ``headers`` (lower-case names) report; ``None`` if none.

    Anthropic's names win over OpenAI's where both are sent. An unreadable value is skipped
    rather than guessed at: a quota needs both its limit and its remaining count.
    """
    quotas: dict[Dimension, Quota] = {}
    for dimension in DIMENSIONS:
        quota = _anthropic_quota(headers, dimension) or _openai_quota(headers, dimension, now_us)
        if quota is not None:
            quotas[dimension] = quota
    if "input_tokens" in quotas or "output_tokens" in quotas:
        # Anthropic's ``tokens`` is whichever of those two is tighter, not a third limit on
        # their sum: counted as one, an input-heavy load would stop at the output limit.
        quotas.pop("tokens", None)
    retry_after = parse_retry_after(headers.get("retry-after"), now_us)
    if not quotas and retry_after is None:
        return None
    return RateLimits(seen_us=now_us, quotas=quotas, retry_after=retry_after)


def parse_retry_after(value: str | None, now_us: int) -> float | None:
    """``retry-after`` in seconds: a number of seconds or an HTTP date (RFC 9110 §10.2.3);
    ``None`` if absent, unreadable or in the past."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - now_us / MICROS_PER_SECOND
    return seconds if 0 <= seconds < math.inf else None


def _anthropic_quota(headers: Mapping[str, str], dimension: Dimension) -> Quota | None:
    prefix = f"anthropic-ratelimit-{dimension.replace('_', '-')}"
    limit = _integer(headers.get(f"{prefix}-limit"))
    remaining = _integer(headers.get(f"{prefix}-remaining"))
    if limit is None or remaining is None:
        return None
    return Quota(limit, remaining, _rfc3339_us(headers.get(f"{prefix}-reset")))


def _openai_quota(headers: Mapping[str, str], dimension: Dimension, now_us: int) -> Quota | None:
    if dimension not in ("requests", "tokens"):
        return None
    limit = _integer(headers.get(f"x-ratelimit-limit-{dimension}"))
    remaining = _integer(headers.get(f"x-ratelimit-remaining-{dimension}"))
    if limit is None or remaining is None:
        return None
    wait = _duration_seconds(headers.get(f"x-ratelimit-reset-{dimension}"))
    reset = None if wait is None else now_us + int(wait * MICROS_PER_SECOND)
    return Quota(limit, remaining, reset)


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _rfc3339_us(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * MICROS_PER_SECOND)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def _duration(seconds: float) -> str:
    """``seconds`` as OpenAI writes a reset: ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    text = f"{int(hours)}h" if hours else ""
    if hours or minutes:
        text += f"{int(minutes)}m"
    return text + f"{round(rest, 3):g}s"


def _duration_seconds(value: str | None) -> float | None:
    """OpenAI's reset durations: ``1s``, ``6m0s``, ``1h2m3.5s``, ``20ms``."""
    if not value:
        return None
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
