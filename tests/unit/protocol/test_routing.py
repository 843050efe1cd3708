"""Reading a body only as far as routing needs, and the relay's lossless edits of JSON and SSE."""

from __future__ import annotations

import json

import pytest

from batchyard.errors import ParamsError
from batchyard.protocol.messages import decode_params
from batchyard.protocol.routing import (
    Route,
    check_relayed,
    decode_route,
    forwarded_headers,
    with_model,
)
from batchyard.protocol.streaming import StartRenamer


def full(raw: bytes) -> object:
    return decode_params(raw, in_batch=True)


def test_routing_ignores_what_it_does_not_need() -> None:
    raw = b'{"messages": 7, "model": "m", "brand_new": {"x": 1}, "max_tokens": 3}'
    assert decode_route(raw, full) == Route(model="m", max_tokens=3)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"max_tokens": 3, "messages": []}', "model: Field required"),
        (b'{"model": 5}', "model: Expected `str`, got `int`"),
        (b"not json", "Invalid JSON"),
    ],
)
def test_an_unroutable_body_gets_the_full_validators_message(raw: bytes, message: str) -> None:
    with pytest.raises(ParamsError) as caught:
        decode_route(raw, full)
    assert caught.value.message.startswith(message)


def test_the_relay_checks_only_max_tokens_and_stream_in_a_batch() -> None:
    assert check_relayed(Route(model="m", max_tokens=0), in_batch=False) == 0
    with pytest.raises(ParamsError, match="at least 1 for requests in a Message Batch"):
        check_relayed(Route(model="m", max_tokens=0), in_batch=True)
    with pytest.raises(ParamsError, match="streaming is not supported"):
        check_relayed(Route(model="m", max_tokens=5, stream=True), in_batch=True)
    with pytest.raises(ParamsError, match="greater than or equal to 0"):
        check_relayed(Route(model="m", max_tokens=-1), in_batch=False)
    with pytest.raises(ParamsError, match="max_tokens: Field required"):
        check_relayed(Route(model="m"), in_batch=False)


def test_only_model_changes_and_key_order_stays() -> None:
    raw = b'{"z": [1, {"b": null, "a": 2.5}], "model": "mine", "stream": false, "a": "\\u00e9"}'
    forwarded = json.loads(with_model(raw, "theirs", drop=("stream",)))
    assert list(forwarded) == ["z", "model", "a"]
    assert forwarded == {"z": [1, {"b": None, "a": 2.5}], "model": "theirs", "a": "é"}


def test_anthropic_headers_are_forwarded_but_not_the_version_or_credentials() -> None:
    headers = [
        ("Anthropic-Beta", "a-1"),
        ("anthropic-beta", "b-2"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-user-profile-id", "p"),
        ("x-api-key", "sk-secret"),
        ("authorization", "Bearer sk-secret"),
        ("content-type", "application/json"),
    ]
    assert forwarded_headers(headers) == (
        ("anthropic-beta", "a-1"),
        ("anthropic-beta", "b-2"),
        ("anthropic-user-profile-id", "p"),
    )


START = (
    b'event: message_start\r\ndata: {"type":"message_start","message":{"id":"m1",'
    b'"model":"upstream","content":[],"future":1}}\r\n\r\n'
)
REST = b'event: ping\ndata: {"type":"ping"}\n\nevent: message_stop\ndata: {"type":"mes'


def test_the_stream_is_passed_on_with_only_message_start_renamed() -> None:
    renamer = StartRenamer("asked-for")
    stream = b'event: ping\ndata: {"type": "ping"}\n\n' + START + REST
    # Fed in small pieces, so events are split anywhere, line endings included.
    out = b"".join(renamer.feed(stream[i : i + 7]) for i in range(0, len(stream), 7))
    out += renamer.flush()
    events = out.split(b"\n\n", 1)
    assert events[0] == b'event: ping\ndata: {"type": "ping"}'
    renamed, rest = events[1].split(b"\r\n\r\n", 1)
    name, data = renamed.split(b"\n")
    assert name == b"event: message_start"
    start = json.loads(data.removeprefix(b"data: "))
    assert start["message"] == {"id": "m1", "model": "asked-for", "content": [], "future": 1}
    assert rest == REST, "everything after message_start passes untouched"
