"""OpenAI's Batch API as data: the create body, the ``Batch`` object, the input file's lines and
the output and error files' lines.

A batch's input file is read line by line (:class:`InputFileReader`): each line is decoded
into its envelope (``custom_id``, ``method``, ``url``) with the ``body`` kept as raw bytes,
stored as the request's params and checked per request by the worker, as OpenAI checks
bodies only when it runs them (a bad body is that request's 400 in the error file). What is
wrong with the file itself (a line that is not JSON, a duplicate ``custom_id``, another
``method`` or ``url``) fails the whole batch, with one :class:`BatchError` per line.

Results are rendered from the stored neutral outcomes when read (:func:`output_line`,
:func:`error_line`), so the same queue serves both APIs. Every id in a rendered line is
derived from the batch and the ``custom_id`` (or the stored answer), so a file reads the same
on every download.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from batchyard.protocol import outcomes
from batchyard.protocol.batches import PRIORITY_RANGE
from batchyard.protocol.chat_translation import chat_completion
from batchyard.protocol.errors import STATUS_FOR_ERROR_TYPE
from batchyard.protocol.messages import describe_validation_error
from batchyard.protocol.openai_errors import (
    OpenAIErrorResponse,
    leading_field,
    openai_error,
    openai_status,
)

#: The endpoints a batch may name, of those OpenAI's API has: the ones batchyard runs.
ENDPOINTS = ("/v1/chat/completions",)
COMPLETION_WINDOWS = ("24h",)
MAX_METADATA_PAIRS = 16
_MAX_METADATA_KEY = 64
_MAX_METADATA_VALUE = 512
#: How many bad lines a failed batch lists (a file of 50,000 bad lines is one mistake).
MAX_LISTED_ERRORS = 1000
_MAX_CUSTOM_ID = 64
UTF8_BOM = b"\xef\xbb\xbf"

BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]

# --------------------------------------------------------------------------- create


class OutputExpiresAfter(msgspec.Struct, forbid_unknown_fields=True):
    anchor: Literal["created_at"]
    seconds: int


class BatchCreate(msgspec.Struct, forbid_unknown_fields=True):
    """The ``POST /v1/batches`` body."""

    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None
    output_expires_after: OutputExpiresAfter | None = None
    #: A batchyard extension, as on ``POST /v1/messages/batches``.
    priority: Annotated[int, Meta(ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1])] = 0


_create_decoder = msgspec.json.Decoder(BatchCreate)


class CreateError(ValueError):
    """The create body is wrong; the message starts with the field's name."""


def parse_create(body: bytes) -> BatchCreate:
    """The create body, checked; :class:`CreateError` naming the field otherwise."""
    try:
        create = _create_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise CreateError(describe_validation_error(exc)) from None
    if create.endpoint not in ENDPOINTS:
        raise CreateError(
            f"endpoint: {create.endpoint!r} is not supported here; batchyard runs "
            + ", ".join(repr(endpoint) for endpoint in ENDPOINTS)
        )
    if create.completion_window not in COMPLETION_WINDOWS:
        raise CreateError(
            f"completion_window: {create.completion_window!r} is not supported; use '24h'"
        )
    if create.metadata is not None:
        check_metadata(create.metadata)
    if (expiry := create.output_expires_after) is not None and not (
        3600 <= expiry.seconds <= 2_592_000
    ):
        raise CreateError("output_expires_after.seconds: must be between 3600 and 2592000")
    return create


def check_metadata(metadata: dict[str, str]) -> None:
    if len(metadata) > MAX_METADATA_PAIRS:
        raise CreateError(f"metadata: at most {MAX_METADATA_PAIRS} key-value pairs")
    for key, value in metadata.items():
        if len(key) > _MAX_METADATA_KEY:
            raise CreateError(f"metadata: key {key[:80]!r} is longer than 64 characters")
        if len(value) > _MAX_METADATA_VALUE:
            raise CreateError(f"metadata.{key}: the value is longer than 512 characters")


# --------------------------------------------------------------------------- Batch object


class BatchRequestCounts(msgspec.Struct):
    total: int
    completed: int
    failed: int


class BatchError(msgspec.Struct):
    code: str
    line: int | None
    message: str
    param: str | None


class BatchErrors(msgspec.Struct):
    data: list[BatchError]
    object: Literal["list"] = "list"


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int


class BatchUsage(msgspec.Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class Batch(msgspec.Struct, tag_field="object", tag="batch"):
    """Every field of the SDK's ``Batch``, always present (``null`` where not set)."""

    id: str
    endpoint: str
    errors: BatchErrors | None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: BatchRequestCounts
    metadata: dict[str, str] | None
    model: str | None
    usage: BatchUsage | None


class BatchPage(msgspec.Struct, tag_field="object", tag="list"):
    data: list[Batch]
    first_id: str | None
    last_id: str | None
    has_more: bool


def usage(input_tokens: int, output_tokens: int) -> BatchUsage:
    return BatchUsage(
        input_tokens=input_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=0),
        output_tokens=output_tokens,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        total_tokens=input_tokens + output_tokens,
    )


_encoder = msgspec.json.Encoder()
_errors_decoder = msgspec.json.Decoder(list[BatchError])
_metadata_decoder = msgspec.json.Decoder(dict[str, str])


def encode_errors(errors: list[BatchError]) -> bytes:
    return _encoder.encode(errors)


def decode_errors(raw: bytes) -> BatchErrors:
    return BatchErrors(data=_errors_decoder.decode(raw))


def encode_metadata(metadata: dict[str, str] | None) -> bytes | None:
    return _encoder.encode(metadata) if metadata else None


def decode_metadata(raw: bytes | None) -> dict[str, str] | None:
    return _metadata_decoder.decode(raw) if raw else None


# --------------------------------------------------------------------------- input file


class InputLine(msgspec.Struct):
    """One line of an input file; ``body`` is kept as the bytes it came as."""

    custom_id: str
    method: str
    url: str
    body: msgspec.Raw


class _BodyModel(msgspec.Struct):
    model: str


_line_decoder = msgspec.json.Decoder(InputLine)
_model_decoder = msgspec.json.Decoder(_BodyModel)


class ParsedLine(msgspec.Struct):
    custom_id: str
    model: str
    body: bytes


class InputFileReader:
    """Reads an input file fed in chunks of any size, line by line, keeping the good lines
    and one :class:`BatchError` per bad one (1-based line numbers, as OpenAI counts).

    ``max_lines`` caps the requests of one batch; blank lines are skipped, as OpenAI does.
    """

    def __init__(self, *, endpoint: str, max_lines: int) -> None:
        self._endpoint = endpoint
        self._max_lines = max_lines
        self._pending = b""
        self._line_number = 0
        self._seen: set[str] = set()
        self.lines: list[ParsedLine] = []
        self.errors: list[BatchError] = []
        #: Bad lines beyond :data:`MAX_LISTED_ERRORS`, counted but not listed.
        self.unlisted_errors = 0
        self.too_many_lines = False

    def feed(self, chunk: bytes) -> None:
        data = self._pending + chunk
        *complete, self._pending = data.split(b"\n")
        for line in complete:
            self._line(line)

    def finish(self) -> list[BatchError]:
        """The errors that fail the batch (none: every line is a request to run)."""
        if self._pending:
            self._line(self._pending)
            self._pending = b""
        errors = list(self.errors)
        if self.unlisted_errors:
            errors.append(
                BatchError(
                    code="too_many_errors",
                    line=None,
                    message=f"{self.unlisted_errors} more lines have errors (not listed)",
                    param=None,
                )
            )
        if self.too_many_lines:
            errors.append(
                BatchError(
                    code="too_many_requests",
                    line=None,
                    message=f"The input file has more than {self._max_lines} requests, the "
                    "limit of one batch",
                    param=None,
                )
            )
        if not self.lines and not errors:
            errors.append(
                BatchError(
                    code="empty_file",
                    line=None,
                    message="The input file has no requests",
                    param=None,
                )
            )
        return errors

    def _line(self, raw: bytes) -> None:
        self._line_number += 1
        if self._line_number == 1:
            raw = raw.removeprefix(UTF8_BOM)  # as editors on Windows save UTF-8
        if not raw.strip():
            return
        try:
            parsed = self._parse(raw)
        except _LineError as exc:
            self._error(exc.code, str(exc), exc.param)
            return
        if len(self.lines) >= self._max_lines:
            self.too_many_lines = True
            return
        self.lines.append(parsed)

    def _parse(self, raw: bytes) -> ParsedLine:
        try:
            line = _line_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            message = describe_validation_error(exc)
            raise _LineError("invalid_request", message, leading_field(message)) from None
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise _LineError("invalid_json_line", "This line is not valid JSON", None) from None
        if not 1 <= len(line.custom_id) <= _MAX_CUSTOM_ID:
            raise _LineError(
                "invalid_custom_id",
                f"custom_id: must be 1 to {_MAX_CUSTOM_ID} characters",
                "custom_id",
            )
        if line.custom_id in self._seen:
            raise _LineError(
                "duplicate_custom_id",
                f"custom_id: {line.custom_id!r} is used by an earlier line; each request of "
                "a batch needs its own",
                "custom_id",
            )
        self._seen.add(line.custom_id)
        if line.method != "POST":
            raise _LineError(
                "invalid_method", f"method: {line.method!r}; batch requests use 'POST'", "method"
            )
        if line.url != self._endpoint:
            raise _LineError(
                "mismatched_url",
                f"url: {line.url!r} differs from the batch's endpoint {self._endpoint!r}",
                "url",
            )
        try:
            model = _model_decoder.decode(line.body).model
        except msgspec.DecodeError:
            raise _LineError(
                "missing_model",
                "body.model: a JSON object with a 'model' string is required",
                "body.model",
            ) from None
        return ParsedLine(custom_id=line.custom_id, model=model, body=bytes(line.body))

    def _error(self, code: str, message: str, param: str | None) -> None:
        if len(self.errors) >= MAX_LISTED_ERRORS:
            self.unlisted_errors += 1
            return
        self.errors.append(
            BatchError(code=code, line=self._line_number, message=message, param=param)
        )


class _LineError(Exception):
    def __init__(self, code: str, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


# --------------------------------------------------------------------------- result lines


class LineResponse(msgspec.Struct):
    status_code: int
    request_id: str
    body: msgspec.Raw | OpenAIErrorResponse


class LineError(msgspec.Struct):
    code: str
    message: str


class OutputLine(msgspec.Struct):
    """A line of an output or error file, in OpenAI's format."""

    id: str
    custom_id: str
    response: LineResponse | None
    error: LineError | None


_stored_decoder = msgspec.json.Decoder(outcomes.Outcome)

_UNRUN_ERRORS = {
    "canceled": LineError(
        code="batch_cancelled",
        message="This request was not executed because the batch was cancelled.",
    ),
    "expired": LineError(
        code="batch_expired",
        message="This request could not be executed before the completion window expired.",
    ),
}

FilePart = Literal["output", "error"]


def result_lines(
    batch_id: str,
    created: int,
    results: Iterator[tuple[str, str, bytes | None]],
    part: FilePart,
) -> Iterator[bytes]:
    """The lines (no newline) of a batch's output file (``part == "output"``: succeeded
    requests) or error file (errored, canceled and expired ones), from ``(custom_id,
    final state, stored outcome)`` of finished requests. ``created`` (unix seconds) is the
    ``created`` of every chat completion rendered."""
    for custom_id, state, outcome in results:
        line_id = "batch_req_" + _digest(batch_id, custom_id)
        if state in _UNRUN_ERRORS:
            if part == "error":
                yield _encoder.encode(
                    OutputLine(line_id, custom_id, response=None, error=_UNRUN_ERRORS[state])
                )
            continue
        if outcome is None:
            raise ValueError(f"a {state} request has no stored outcome")
        stored = _stored_decoder.decode(outcome)
        if isinstance(stored, outcomes.Succeeded):
            if part == "output":
                body = chat_completion(
                    stored.message,
                    completion_id="chatcmpl-" + _digest(batch_id, custom_id),
                    created=created,
                )
                response = LineResponse(
                    200, "req_" + _digest(custom_id, batch_id), msgspec.Raw(body)
                )
                yield _encoder.encode(OutputLine(line_id, custom_id, response, error=None))
        elif part == "error":
            envelope = openai_error(stored.type, stored.message)
            status = openai_status(STATUS_FOR_ERROR_TYPE.get(stored.type, 500))
            response = LineResponse(status, stored.request_id, envelope)
            yield _encoder.encode(OutputLine(line_id, custom_id, response, error=None))


def _digest(*parts: str) -> str:
    """A stable 24-character id part for ``parts`` (a rendered file reads the same twice)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
