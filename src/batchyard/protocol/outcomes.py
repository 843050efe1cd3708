"""The neutral outcome of one request, as stored: what happened, not how a wire shows it.

A worker stores a :class:`Succeeded` (the engine's ``Message``, billed at the batch tier) or
an :class:`Errored` (the error's type, message and its ``req_…`` id, fixed once so every
download shows the same id). Results are rendered from these when read: as Anthropic JSONL
lines today (:mod:`batchyard.protocol.batches`), and as other formats by other surfaces,
from the same stored bytes.
"""

from __future__ import annotations

import msgspec

from batchyard import ids
from batchyard.protocol.errors import ErrorType
from batchyard.protocol.messages import Message


class Succeeded(msgspec.Struct, tag_field="outcome", tag="succeeded"):
    message: Message


class Errored(msgspec.Struct, tag_field="outcome", tag="errored"):
    type: ErrorType
    message: str
    #: The ``req_…`` id of this error, as the API puts in every error envelope.
    request_id: str


Outcome = Succeeded | Errored

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Outcome)


def succeeded(message: Message) -> Succeeded:
    """A batch answer: the message with its usage marked as billed at the batch tier.

    The caller's message is left as it was (it may also be streamed or cached elsewhere).
    """
    usage = msgspec.structs.replace(message.usage, service_tier="batch")
    return Succeeded(message=msgspec.structs.replace(message, usage=usage))


def errored(error_type: ErrorType, message: str) -> Errored:
    return Errored(type=error_type, message=message, request_id=ids.request_id())


def encode(outcome: Outcome) -> bytes:
    return _encoder.encode(outcome)


def decode(stored: bytes) -> Outcome:
    return _decoder.decode(stored)
