"""What must be read from a Messages body to route it, and what a relay forwards unread.

A body is first read only as far as routing needs (:func:`decode_route`: ``model``, and
``max_tokens`` / ``stream`` for the rules a relay still applies). Engines that run requests
themselves then validate it in full (:mod:`batchyard.protocol.messages`); a relay forwards it
unvalidated, because its upstream validates it and refuses what it would not honour, and
decoding it into our own types would drop whatever those types do not know (new blocks,
new fields of known blocks).

The JSON a relay forwards and returns is decoded generically (objects as ordered dicts), only
``model`` is changed, and it is encoded again: every other key, block and value survives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from batchyard.errors import ParamsError
from batchyard.protocol.messages import check_length_and_stream, describe_validation_error

#: Request headers forwarded to an upstream, as ``(name, value)`` pairs in arrival order.
ForwardedHeaders = tuple[tuple[str, str], ...]

#: Headers of the ``anthropic-`` family that are not forwarded: the relay speaks to its
#: upstream in the version it was configured for, whatever version the client spoke to us.
_NOT_FORWARDED = frozenset({"anthropic-version"})


class Route(msgspec.Struct):
    """The routing view of a Messages or count_tokens body; every other key is ignored."""

    model: str
    max_tokens: int | None = None
    stream: bool | None = None


_route_decoder = msgspec.json.Decoder(Route)
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def decode_route(raw: bytes, validate: Callable[[bytes], object]) -> Route:
    """The routing fields of a body, or the :class:`ParamsError` ``validate`` (the full
    validator of this kind of body) raises for it.

    A body that cannot be routed (not JSON, no ``model`` string, a ``max_tokens`` that is
    not an integer) gets the message full validation gives it, whichever engine it meant,
    so a broken body reads the same everywhere; the routing decoder's own message is used
    only if full validation somehow passes.
    """
    try:
        return _route_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        validate(raw)
        if isinstance(exc, msgspec.DecodeError):
            raise ParamsError(describe_validation_error(exc)) from None
        raise ParamsError(f"Invalid JSON: {exc}") from None


def check_relayed(route: Route, *, in_batch: bool) -> int:
    """The ``max_tokens`` of a body a relay forwards: what a relay checks itself.

    The same rules (and words) as full validation for what routing and batching depend on:
    ``max_tokens`` present and in range, and no ``stream`` in a batch. Everything else is
    left to the upstream.
    """
    if route.max_tokens is None:
        raise ParamsError("max_tokens: Field required")
    check_length_and_stream(route.max_tokens, route.stream, in_batch=in_batch)
    return route.max_tokens


def forwarded_headers(headers: Iterable[tuple[str, str]]) -> ForwardedHeaders:
    """The client's headers an upstream needs: ``anthropic-*`` (``anthropic-beta``,
    ``anthropic-user-profile-id`` …) except ``anthropic-version``.

    Credentials (``x-api-key``, ``authorization``) are never among them: a relay calls its
    upstream with its own key.
    """
    return tuple(
        (name.lower(), value)
        for name, value in headers
        if name.lower().startswith("anthropic-") and name.lower() not in _NOT_FORWARDED
    )


def decode_object(raw: bytes) -> dict[str, Any]:
    """A JSON object, every key in its order; :class:`msgspec.DecodeError` if it is not one."""
    return _object_decoder.decode(raw)


def with_model(raw: bytes, model: str, *, drop: Iterable[str] = ()) -> bytes:
    """``raw`` (a JSON object) with ``model`` set to ``model`` and the keys in ``drop``
    removed; everything else as it was."""
    body = decode_object(raw)
    body["model"] = model
    for key in drop:
        body.pop(key, None)
    return _encoder.encode(body)


def encode_object(body: dict[str, Any]) -> bytes:
    return _encoder.encode(body)


def names_a_beta(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether a request named a beta (``anthropic-beta``): its body is then checked against
    the SDK's beta types, which add keys such as ``context_management``."""
    return any(name.lower() == "anthropic-beta" and value for name, value in headers)
