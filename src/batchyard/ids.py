"""Identifiers in the APIs' formats: Anthropic's ``msgbatch_01…``, ``msg_01…``, ``req_01…``,
OpenAI's ``batch_01…``, ``file-01…``, ``chatcmpl-01…``, and API keys.

IDs are opaque to clients; ours are ``01`` followed by 22 base58 characters, as the real
API's look, drawn from ``secrets`` so they cannot be guessed across workspaces.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


_RANDOM_BYTES = 16  # 128 bits; 58**22 > 2**128, so 22 base58 digits always suffice


def _opaque(prefix: str) -> str:
    number = int.from_bytes(secrets.token_bytes(_RANDOM_BYTES))
    digits = []
    for _ in range(22):
        number, digit = divmod(number, 58)
        digits.append(_BASE58[digit])
    return prefix + "01" + "".join(digits)


def batch_id() -> str:
    return _opaque("msgbatch_")


def openai_batch_id() -> str:
    """A batch made through the OpenAI surface: ``batch_…``, as OpenAI's look."""
    return _opaque("batch_")


def message_id() -> str:
    return _opaque("msg_")


def request_id() -> str:
    return _opaque("req_")


def tool_use_id() -> str:
    return _opaque("toolu_")


def file_id() -> str:
    """An OpenAI File (``/v1/files``): ``file-`` and an opaque tail, as OpenAI's look."""
    return _opaque("file-")


def chat_completion_id() -> str:
    """A Chat Completions answer's id, in OpenAI's form (``chatcmpl-…``)."""
    return _opaque("chatcmpl-")


def api_key() -> str:
    """A new secret API key; only its hash is ever stored."""
    return "sk-by-" + secrets.token_urlsafe(32)


def webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def hash_api_key(key: str) -> str:
    """SHA-256 is enough here: keys are 256-bit random secrets, not user-chosen passwords."""
    return hashlib.sha256(key.encode()).hexdigest()


def submission_id() -> str:
    """An upstream submission of ours; sent as the upstream create's ``Idempotency-Key``."""
    return _opaque("upbatch_")
