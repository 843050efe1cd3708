"""Reading and writing rate-limit headers: Anthropic's, OpenAI's, and ``retry-after``."""

from __future__ import annotations

from batchyard.protocol.ratelimits import Quota, RateLimits, parse_retry_after, read_rate_limits

NOW = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z


def test_anthropic_headers_are_read_per_dimension() -> None:
    limits = read_rate_limits(
        {
            "anthropic-ratelimit-requests-limit": "3000",
            "anthropic-ratelimit-requests-remaining": "2999",
            "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:21Z",
            "anthropic-ratelimit-input-tokens-limit": "400000",
            "anthropic-ratelimit-input-tokens-remaining": "399000",
            "anthropic-ratelimit-output-tokens-limit": "80000",
            "anthropic-ratelimit-output-tokens-remaining": "79990",
            "anthropic-ratelimit-output-tokens-reset": "2023-11-14T22:13:20.500000+00:00",
            # The tighter of the two above, not a limit of its own: not a bucket.
            "anthropic-ratelimit-tokens-limit": "80000",
            "anthropic-ratelimit-tokens-remaining": "79990",
        },
        NOW,
    )
    assert limits is not None and limits.retry_after is None
    assert limits.quotas["requests"] == Quota(3000, 2999, NOW + 1_000_000)
    assert limits.quotas["input_tokens"] == Quota(400000, 399000, None)
    assert limits.quotas["output_tokens"] == Quota(80000, 79990, NOW + 500_000)
    assert "tokens" not in limits.quotas


def test_openai_headers_with_durations() -> None:
    limits = read_rate_limits(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000",
            "x-ratelimit-reset-tokens": "6m0.5s",
        },
        NOW,
    )
    assert limits is not None
    assert limits.quotas["requests"] == Quota(500, 499, NOW + 120_000)
    assert limits.quotas["tokens"] == Quota(30000, 29000, NOW + 360_500_000)


def test_unreadable_or_half_quotas_are_skipped_and_nothing_is_none() -> None:
    assert read_rate_limits({"anthropic-ratelimit-requests-limit": "10"}, NOW) is None
    assert read_rate_limits({"x-ratelimit-limit-requests": "ten"}, NOW) is None
    assert read_rate_limits({"content-type": "application/json"}, NOW) is None
    odd = read_rate_limits(
        {
            "anthropic-ratelimit-requests-limit": "10",
            "anthropic-ratelimit-requests-remaining": "3",
            "anthropic-ratelimit-requests-reset": "soon",
            "x-ratelimit-reset-tokens": "1x",
        },
        NOW,
    )
    assert odd is not None and odd.quotas == {"requests": Quota(10, 3, None)}


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after("0.5", NOW) == 0.5
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", NOW) == 10.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", NOW) is None  # past
    assert parse_retry_after("-1", NOW) is None
    assert parse_retry_after("whenever", NOW) is None
    assert parse_retry_after(None, NOW) is None
    refused = read_rate_limits({"retry-after": "3"}, NOW)
    assert refused == RateLimits(seen_us=NOW, quotas={}, retry_after=3.0)


def test_written_headers_read_back_the_same() -> None:
    limits = RateLimits(
        seen_us=NOW, quotas={"requests": Quota(60, 0, NOW + 1_000_000)}, retry_after=0.2
    )
    headers = limits.headers()
    assert headers == {
        "anthropic-ratelimit-requests-limit": "60",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:21Z",
        "retry-after": "1",
    }
    assert read_rate_limits(headers, NOW) == RateLimits(
        seen_us=NOW, quotas=limits.quotas, retry_after=1.0
    )
