"""The neutral outcome of one request, as stored: what happened, not how a wire shows it.

A worker stores a :class:`Succeeded` (the answer's ``Message`` JSON, billed at the batch
tier) or an :class:`Errored` (the error's type, message and its ``req_…`` id, fixed once so
every download shows the same id). Results are rendered from these when read: as Anthropic
JSONL lines today (:mod:`batchyard.protocol.batches`), and as other formats by other
surfaces, from the same stored bytes.

The message is kept as raw JSON, not as our typed ``Message``: a relayed answer carries
whatever its upstream sent (blocks and fields our types do not know), and it must reach the
results file unchanged.
"""

from __future__ import annotations

import msgspec

from batchyard import ids
from batchyard.protocol.errors import ErrorType
from batchyard.protocol.routing import decode_raw_object, encode_raw_object, raw_value


class Succeeded(msgspec.Struct, tag_field="outcome", tag="succeeded"):
    message: msgspec.Raw


class Errored(msgspec.Struct, tag_field="outcome", tag="errored"):
    type: ErrorType
    message: str
    #: The ``req_…`` id of this error, as the API puts in every error envelope.
    request_id: str


Outcome = Succeeded | Errored

_encoder = msgspec.json.Encoder()
_BATCH_TIER = raw_value("batch")


def succeeded(message: bytes) -> Succeeded:
    """A batch answer: the ``Message`` JSON with ``usage.service_tier`` set to ``batch``
    (the tier it is billed at), every other value byte for byte as it was. A message whose
    ``usage`` is not an object is kept as it is: there is no usage to mark."""
    decoded = decode_raw_object(message)
    if (usage := decoded.get("usage")) is not None:
        try:
            counts = decode_raw_object(usage)
        except msgspec.DecodeError:
            return Succeeded(message=msgspec.Raw(message))
        counts["service_tier"] = _BATCH_TIER
        decoded["usage"] = msgspec.Raw(encode_raw_object(counts))
    return Succeeded(message=msgspec.Raw(encode_raw_object(decoded)))


def errored(error_type: ErrorType, message: str) -> Errored:
    return Errored(type=error_type, message=message, request_id=ids.request_id())


def encode(outcome: Outcome) -> bytes:
    return _encoder.encode(outcome)
