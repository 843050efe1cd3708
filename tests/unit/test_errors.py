"""The exception tree: types, statuses, and the retry-after hint that travels with them."""

from __future__ import annotations

import math

import pytest

from batchyard.errors import ApiError, BatchyardError, EngineError, ParamsError


def test_the_tree() -> None:
    assert issubclass(ParamsError, ApiError) and issubclass(EngineError, ApiError)
    assert issubclass(ApiError, BatchyardError)
    params = ParamsError("max_tokens: Field required")
    assert (params.error_type, params.status, params.message) == (
        "invalid_request_error",
        400,
        "max_tokens: Field required",
    )
    assert ApiError("invalid_request_error", "no", status=405).status == 405


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [("overloaded_error", True), ("rate_limit_error", True), ("invalid_request_error", False)],
)
def test_engine_errors_are_retryable_by_type_unless_told(error_type: str, retryable: bool) -> None:
    assert EngineError(error_type, "x").retryable is retryable  # type: ignore[arg-type]
    assert EngineError(error_type, "x", retryable=False).retryable is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hint", "header"), [(7.0, "7"), (0.2, "1"), (2.5, "3"), (None, None), (0.0, None)]
)
def test_retry_after_becomes_a_whole_seconds_header_never_shorter(
    hint: float | None, header: str | None
) -> None:
    error = EngineError("overloaded_error", "busy", retry_after=hint)
    assert error.headers.get("retry-after") == header


@pytest.mark.parametrize("hint", [math.nan, math.inf, -math.inf, -3.0])
def test_a_nonsense_retry_after_from_an_upstream_is_dropped_not_raised(hint: float) -> None:
    error = EngineError("overloaded_error", "busy", retry_after=hint)
    assert error.retry_after is None and "retry-after" not in error.headers
    assert error.status == 529
