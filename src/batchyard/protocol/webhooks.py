"""Webhook events (a batchyard extension) and their Standard Webhooks signature.

Receivers verify ``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(key, "{id}.{timestamp}.
{body}")), where ``key`` is the base64-decoded part of the ``whsec_…`` secret, and dedupe on
``webhook-id``: delivery is at least once. See https://www.standardwebhooks.com.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec

from batchyard.protocol.batches import DeletedMessageBatch, MessageBatch


class WebhookEvent(msgspec.Struct):
    """``{"type": "message_batch.ended", "created_at": ..., "data": <MessageBatch>}``.

    ``data`` is a ``message_batch_deleted`` object if the batch was deleted before delivery.
    """

    type: str
    created_at: str
    data: MessageBatch | DeletedMessageBatch


class BatchEventData(msgspec.Struct):
    id: str


class OpenAIBatchEvent(msgspec.Struct, tag_field="object", tag="event"):
    """What a batch made through the OpenAI surface sends instead: OpenAI's webhook event
    (``batch.completed``, ``batch.cancelled``, ``batch.expired``), which its SDK's
    ``client.webhooks.unwrap`` verifies (the same Standard Webhooks signature) and parses."""

    id: str
    type: str
    created_at: int
    data: BatchEventData


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }
