"""Result lines, as kept on disk, read into one row's answer columns.

The lines are decoded leniently (unknown keys ignored, every field optional where Anthropic may
leave it out): they come from any Anthropic-compatible server, and a field one of them adds
must not make a finished run unreadable. Only what the output table holds is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from batchyard.protocol.errors import RETRYABLE_ERROR_TYPES

#: The columns a run adds to its input, in this order.
ANSWER_COLUMNS = (
    "response",
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "error_type",
    "error_message",
)


class _Usage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0


class _Block(msgspec.Struct):
    type: str
    text: str = ""


class _Message(msgspec.Struct):
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: _Usage = _Usage()


class _ErrorDetail(msgspec.Struct, frozen=True):
    type: str = "api_error"
    message: str = ""


class _ErrorEnvelope(msgspec.Struct, frozen=True):
    error: _ErrorDetail = _ErrorDetail()


class _Result(msgspec.Struct):
    type: str
    message: _Message | None = None
    error: _ErrorEnvelope | None = None


class _Line(msgspec.Struct):
    custom_id: str
    result: _Result


_line = msgspec.json.Decoder(_Line)


@dataclass(frozen=True)
class RowResult:
    """One request's result as the output table shows it."""

    #: ``succeeded``, ``errored``, ``canceled`` or ``expired``.
    result_type: str
    response: str | None = None
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    error_type: str | None = None
    error_message: str | None = None

    @property
    def retryable(self) -> bool:
        """Worth sending again as it is: the failure was about load, luck or time."""
        if self.result_type == "expired":
            return True
        return self.result_type == "errored" and self.error_type in RETRYABLE_ERROR_TYPES

    def columns(self) -> dict[str, object]:
        return {
            "response": self.response,
            "stop_reason": self.stop_reason,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "error_type": self.error_type,
            "error_message": self.error_message,
        }


def read_results(path: Path) -> Iterator[tuple[str, RowResult]]:
    """``(custom_id, result)`` for every line of a downloaded results file."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                decoded = _line.decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(f"{path}: line {number}: not a result line: {exc}") from None
            yield decoded.custom_id, _row_result(decoded.result)


def _row_result(result: _Result) -> RowResult:
    if result.type == "succeeded" and result.message is not None:
        message = result.message
        return RowResult(
            result_type="succeeded",
            response="".join(block.text for block in message.content if block.type == "text"),
            stop_reason=message.stop_reason,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
        )
    if result.type == "errored":
        detail = (result.error or _ErrorEnvelope()).error
        return RowResult("errored", error_type=detail.type, error_message=detail.message)
    return RowResult(result.type, error_type=result.type)
