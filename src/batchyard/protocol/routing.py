"""What must be read from a Messages body to route it, and what a relay forwards unread.

A body is first read only as far as routing needs (:func:`decode_route`: ``model``, and
``max_tokens`` / ``stream`` for the rules a relay still applies). Engines that run requests
themselves then validate it in full (:mod:`batchyard.protocol.messages`); a relay forwards it
unvalidated, because its upstream validates it and refuses what it would not honour, and
decoding it into our own types would drop whatever those types do not know (new blocks,
new fields of known blocks).

The JSON a relay forwards and returns is split into its top-level keys, each value kept as
the bytes it arrived as (:class:`msgspec.Raw`); only ``model`` is replaced and the object is
joined again. Nothing below the top level is parsed, so every block, key, number (``1e400``,
``1.10``) and escape passes as sent.
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
    #: Only compared with ``None`` (fast mode is refused in a batch); its value is the upstream's.
    speed: Any = None


#: A JSON object as its top-level keys, each value the bytes it came as.
RawObject = dict[str, msgspec.Raw]

_route_decoder = msgspec.json.Decoder(Route)
_raw_object_decoder = msgspec.json.Decoder(RawObject)
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
    ``max_tokens`` present and in range, no ``stream`` and no fast ``speed`` in a batch (a
    batch must not buy fast mode from the upstream's sync API). Everything else is left to
    the upstream.
    """
    if route.max_tokens is None:
        raise ParamsError("max_tokens: Field required")
    check_length_and_stream(route.max_tokens, route.stream, in_batch=in_batch, speed=route.speed)
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


def decode_raw_object(raw: bytes) -> RawObject:
    """A JSON object's top-level keys, in order, with their values unparsed;
    :class:`msgspec.DecodeError` if ``raw`` is not one JSON object."""
    return _raw_object_decoder.decode(raw)


def encode_raw_object(body: RawObject) -> bytes:
    return _encoder.encode(body)


def raw_value(value: object) -> msgspec.Raw:
    """``value`` as the JSON bytes of a :class:`RawObject` value."""
    return msgspec.Raw(_encoder.encode(value))


class _TokenCounts(msgspec.Struct):
    """The two counts of an answer's ``usage``; ``null`` or absent counts as 0."""

    input_tokens: int | None = None
    output_tokens: int | None = None


_counts_decoder = msgspec.json.Decoder(_TokenCounts)


def usage_counts(message: RawObject) -> tuple[int, int]:
    """``(input_tokens, output_tokens)`` of a relayed message's ``usage``, kept beside a
    batch outcome; 0 for a count that is missing, ``null`` or of another shape."""
    usage = message.get("usage")
    if usage is None:
        return 0, 0
    try:
        counts = _counts_decoder.decode(usage)
    except msgspec.DecodeError:
        return 0, 0
    return counts.input_tokens or 0, counts.output_tokens or 0


def with_model(raw: bytes, model: str, *, drop: Iterable[str] = ()) -> bytes:
    """``raw`` (a JSON object) with ``model`` set to ``model`` and the keys in ``drop``
    removed; every other value byte for byte as it was."""
    body = decode_raw_object(raw)
    body["model"] = raw_value(model)
    for key in drop:
        body.pop(key, None)
    return encode_raw_object(body)


def names_a_beta(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether a request named a beta (``anthropic-beta``): its body is then checked against
    the SDK's beta types, which add keys such as ``context_management``."""
    return any(name.lower() == "anthropic-beta" and value for name, value in headers)
