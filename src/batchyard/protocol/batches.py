"""Message Batches wire objects and the create-body envelope check.

The create body is decoded with each request's ``params`` kept as raw bytes
(:class:`msgspec.Raw`): a 100k-request body is validated in well under a second and the
params are stored verbatim. Their content is checked later, per request, by the worker
(Anthropic validates params asynchronously too); only the envelope is checked here.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, NamedTuple

import msgspec
from msgspec import Meta

from batchyard.errors import invalid_request
from batchyard.protocol import outcomes
from batchyard.protocol.errors import ErrorDetail, ErrorResponse
from batchyard.protocol.messages import describe_validation_error

CUSTOM_ID_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]+")
_CUSTOM_ID_MAX = 64


class RequestCounts(msgspec.Struct):
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int


class MessageBatch(msgspec.Struct, tag_field="type", tag="message_batch"):
    """Always all ten keys; ``None`` encodes as ``null`` (SDKs validate the full shape)."""

    id: str
    processing_status: Literal["in_progress", "canceling", "ended"]
    request_counts: RequestCounts
    created_at: str
    expires_at: str
    ended_at: str | None
    cancel_initiated_at: str | None
    archived_at: str | None
    results_url: str | None


class MessageBatchPage(msgspec.Struct):
    data: list[MessageBatch]
    has_more: bool
    first_id: str | None
    last_id: str | None


class DeletedMessageBatch(msgspec.Struct, tag_field="type", tag="message_batch_deleted"):
    id: str


# --------------------------------------------------------------------------- result lines


class SucceededResult(msgspec.Struct, tag_field="type", tag="succeeded"):
    #: The stored ``Message`` JSON, spliced in verbatim: it was checked when stored, so it
    #: need not be re-parsed.
    message: msgspec.Raw


class ErroredResult(msgspec.Struct, tag_field="type", tag="errored"):
    error: ErrorResponse


class CanceledResult(msgspec.Struct, tag_field="type", tag="canceled"):
    pass


class ExpiredResult(msgspec.Struct, tag_field="type", tag="expired"):
    pass


BatchResult = SucceededResult | ErroredResult | CanceledResult | ExpiredResult


class IndividualResponse(msgspec.Struct):
    custom_id: str
    result: BatchResult


_line_encoder = msgspec.json.Encoder()
_stored_decoder = msgspec.json.Decoder(outcomes.Outcome)


def result_line(custom_id: str, state: str, outcome: bytes | None) -> bytes:
    """The JSONL line (no newline) of one finished request, rendered from what was stored.

    ``state`` is the request's final state; ``outcome`` the stored neutral outcome of a
    succeeded or errored request (canceled and expired requests have none).
    """
    result: BatchResult
    if state == "canceled":
        result = CanceledResult()
    elif state == "expired":
        result = ExpiredResult()
    else:
        if outcome is None:
            raise ValueError(f"a {state} request has no stored outcome")
        stored = _stored_decoder.decode(outcome)
        if isinstance(stored, outcomes.Succeeded):
            result = SucceededResult(message=stored.message)
        else:
            detail = ErrorDetail(type=stored.type, message=stored.message)
            result = ErroredResult(error=ErrorResponse(error=detail, request_id=stored.request_id))
    return _line_encoder.encode(IndividualResponse(custom_id=custom_id, result=result))


# --------------------------------------------------------------------------- create body


class ParsedRequest(NamedTuple):
    custom_id: str
    #: ``params.model``, or "" when the params do not name one readably.
    model: str
    params: bytes


class _BatchItem(msgspec.Struct, forbid_unknown_fields=True):
    custom_id: str
    params: msgspec.Raw


#: The range of the ``priority`` extension (docs/protocol.md §15).
PRIORITY_RANGE = (-100, 100)


class _CreateBody(msgspec.Struct, forbid_unknown_fields=True):
    requests: list[_BatchItem]
    #: A batchyard extension: the order of this workspace's own batches (higher first).
    priority: Annotated[int, Meta(ge=PRIORITY_RANGE[0], le=PRIORITY_RANGE[1])] = 0


class ParsedCreate(NamedTuple):
    requests: list[ParsedRequest]
    priority: int


_create_decoder = msgspec.json.Decoder(_CreateBody)


def parse_create_body(body: bytes, *, max_requests: int) -> ParsedCreate:
    """Check the envelope and return the requests to store, or raise a 400.

    Checks (docs/protocol.md §5.4): valid JSON; ``requests`` an array of 1..``max_requests``
    objects, each with exactly ``custom_id`` and ``params``; ``custom_id`` matching
    ``^[a-zA-Z0-9_-]{1,64}$`` and unique; ``params`` a JSON object; the optional ``priority``
    an integer in :data:`PRIORITY_RANGE`.
    """
    if not body.strip():
        raise invalid_request("requests: Field required")
    try:
        decoded = _create_decoder.decode(body)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
        message = describe_validation_error(exc)
        if not message.split(" ", 1)[0].endswith(":"):  # about the body itself: no path
            message = f"request body: {message}"
        raise invalid_request(message) from None
    except msgspec.DecodeError as exc:
        _refuse_if_not_utf8(body)
        raise invalid_request(f"Invalid JSON in request body: {exc}") from None
    except UnicodeDecodeError:  # msgspec before 0.20 raised this for bad UTF-8
        _refuse_if_not_utf8(body)
        raise
    except RecursionError:
        raise invalid_request("Request body is nested too deeply") from None
    items = decoded.requests
    if not items:
        raise invalid_request("requests: List should have at least 1 item after validation, not 0")
    if len(items) > max_requests:
        raise invalid_request(
            f"requests: List should have at most {max_requests} items after validation, "
            f"not {len(items)}"
        )
    return ParsedCreate(_check_items(items), decoded.priority)


def _refuse_if_not_utf8(body: bytes) -> None:
    """Say where a body stops being UTF-8 (msgspec only says that it does)."""
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise invalid_request(f"Request body is not valid UTF-8 (byte {exc.start})") from None


def _check_items(items: list[_BatchItem]) -> list[ParsedRequest]:
    first_index: dict[str, int] = {}
    pairs: list[ParsedRequest] = []
    for index, item in enumerate(items):
        custom_id = item.custom_id
        if not _CUSTOM_ID.fullmatch(custom_id) or len(custom_id) > _CUSTOM_ID_MAX:
            raise invalid_request(_custom_id_problem(index, custom_id))
        seen_at = first_index.setdefault(custom_id, index)
        if seen_at != index:
            raise invalid_request(
                f"requests.{index}.custom_id: duplicate custom_id {custom_id!r} "
                f"(first used at requests.{seen_at}); custom_id must be unique within a batch"
            )
        params = bytes(item.params)
        if not params.lstrip().startswith(b"{"):
            raise invalid_request(f"requests.{index}.params: Input should be a valid dictionary")
        try:  # msgspec keeps Raw values unchecked; stored params must be text
            if not params.isascii():
                params.decode()
        except UnicodeDecodeError as exc:
            raise invalid_request(
                f"requests.{index}.params: not valid UTF-8 (byte {exc.start} of params)"
            ) from None
        pairs.append(ParsedRequest(custom_id, _model_of(params), params))
    return pairs


class _ModelOnly(msgspec.Struct):
    model: str = ""


_model_decoder = msgspec.json.Decoder(_ModelOnly)


def _model_of(params: bytes) -> str:
    """``params.model`` for routing; "" if absent or not a string (the worker will say why)."""
    try:
        return _model_decoder.decode(params).model
    except (msgspec.DecodeError, RecursionError):
        return ""


def _custom_id_problem(index: int, custom_id: str) -> str:
    where = f"requests.{index}.custom_id"
    if not custom_id:
        return f"{where}: String should have at least 1 character"
    if len(custom_id) > _CUSTOM_ID_MAX:
        return f"{where}: String should have at most {_CUSTOM_ID_MAX} characters"
    return f"{where}: String should match pattern '{CUSTOM_ID_PATTERN}'"
