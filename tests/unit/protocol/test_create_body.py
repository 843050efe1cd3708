"""``parse_create_body``: the synchronous envelope check of ``POST /v1/messages/batches``.

Every rejection is a 400 ``invalid_request_error`` whose message starts with the JSON path
of the offending field in Anthropic's ``requests.<index>.<field>: <reason>`` style (spec
sections 5.1 and 5.4). ``params`` content is *not* checked here; that happens per request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchyard.errors import ApiError
from batchyard.protocol.batches import CUSTOM_ID_PATTERN, parse_create_body

PARAMS = {"model": "sim", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def item(custom_id: Any = "a", params: Any = PARAMS, **extra: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "params": params, **extra}


def rejection(raw: bytes, *, max_requests: int = 100) -> str:
    """The message of the 400 that ``raw`` must cause."""
    with pytest.raises(ApiError) as caught:
        parse_create_body(raw, max_requests=max_requests)
    error = caught.value
    assert (error.status, error.error_type) == (400, "invalid_request_error")
    return error.message


# ------------------------------------------------------------------------------ accepted


def test_valid_body_returns_custom_ids_and_params_bytes_verbatim_in_order() -> None:
    raw = (
        b'{"requests": [{"custom_id": "b-1", "params": {"z": 1,  "a": [ 2 ]}},'
        b' {"params": {"model": "m"}, "custom_id": "A_0"}]}'
    )
    pairs = parse_create_body(raw, max_requests=10).requests
    # The model is read for routing ("" when params name none); the bytes stay verbatim.
    assert pairs == [("b-1", "", b'{"z": 1,  "a": [ 2 ]}'), ("A_0", "m", b'{"model": "m"}')]


def test_params_content_is_not_validated_at_create() -> None:
    """Bad params become ``errored`` results later (docs/protocol.md §5.4), never a 400 at
    create."""
    raw = body({"requests": [item("x", {"stream": True, "max_tokens": 0, "bogus": 1})]})
    assert parse_create_body(raw, max_requests=1).requests == [
        ("x", "", b'{"stream": true, "max_tokens": 0, "bogus": 1}')
    ]


@pytest.mark.parametrize("custom_id", ["a", "Z", "0", "-", "_", "a" * 64, "Az09_-xY"])
def test_custom_id_pattern_accepts(custom_id: str) -> None:
    assert (
        parse_create_body(body({"requests": [item(custom_id)]}), max_requests=1).requests[0][0]
        == custom_id
    )


def test_exactly_max_requests_is_accepted() -> None:
    raw = body({"requests": [item(f"r{i}") for i in range(5)]})
    assert len(parse_create_body(raw, max_requests=5).requests) == 5


def test_whitespace_around_params_object_is_accepted() -> None:
    raw = b'{"requests":[{"custom_id":"a","params":   {"model":"m"}   }]}'
    assert parse_create_body(raw, max_requests=1).requests == [("a", "m", b'{"model":"m"}')]


# ------------------------------------------------------------------------------ rejected


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n"])
def test_empty_body_says_requests_is_required(raw: bytes) -> None:
    assert rejection(raw) == "requests: Field required"


@pytest.mark.parametrize(
    "raw", [b"{", b"{bad json}", b'{"requests": [}', b'{"requests": []} trailing']
)
def test_malformed_json(raw: bytes) -> None:
    assert rejection(raw).startswith("Invalid JSON")


def test_a_body_that_is_not_utf8_says_where() -> None:
    assert rejection(b"\xff\xfe") == "Request body is not valid UTF-8 (byte 0)"


@pytest.mark.parametrize("value", [[], "requests", 3, None])
def test_body_that_is_valid_json_but_not_an_object(value: Any) -> None:
    """Valid JSON of the wrong shape is a shape error, not "Invalid JSON"."""
    message = rejection(body(value))
    assert "object" in message
    assert not message.startswith("Invalid JSON"), message


def test_missing_requests_names_the_field() -> None:
    assert rejection(body({})) == "requests: Field required"


@pytest.mark.parametrize("value", [{}, "x", 1, None])
def test_requests_not_an_array(value: Any) -> None:
    message = rejection(body({"requests": value}))
    assert message.startswith("requests: "), message
    assert "array" in message


def test_empty_requests_array() -> None:
    assert rejection(body({"requests": []})) == (
        "requests: List should have at least 1 item after validation, not 0"
    )


def test_more_than_max_requests() -> None:
    raw = body({"requests": [item(f"r{i}") for i in range(6)]})
    assert rejection(raw, max_requests=5) == (
        "requests: List should have at most 5 items after validation, not 6"
    )


def test_unknown_top_level_key() -> None:
    assert rejection(body({"requests": [item()], "foo": 1})) == (
        "foo: Extra inputs are not permitted"
    )


@pytest.mark.parametrize("value", [1, "a", None, []])
def test_item_not_an_object(value: Any) -> None:
    message = rejection(body({"requests": [item("ok"), value]}))
    assert message.startswith("requests.1: "), message
    assert "object" in message


def test_item_missing_custom_id() -> None:
    assert rejection(body({"requests": [item("ok"), {"params": PARAMS}]})) == (
        "requests.1.custom_id: Field required"
    )


def test_item_missing_params() -> None:
    assert rejection(body({"requests": [{"custom_id": "a"}]})) == (
        "requests.0.params: Field required"
    )


def test_item_unknown_key() -> None:
    assert rejection(body({"requests": [item(foo=1)]})) == (
        "requests.0.foo: Extra inputs are not permitted"
    )


@pytest.mark.parametrize("value", [7, 1.5, True, None, ["a"], {"a": 1}])
def test_custom_id_not_a_string(value: Any) -> None:
    message = rejection(body({"requests": [item("ok"), item(value)]}))
    assert message.startswith("requests.1.custom_id: "), message
    assert "str" in message


def test_custom_id_empty() -> None:
    assert rejection(body({"requests": [item("")]})) == (
        "requests.0.custom_id: String should have at least 1 character"
    )


def test_custom_id_65_characters() -> None:
    """The message the real API gives (anthropic-sdk-python #984)."""
    assert rejection(body({"requests": [item("ok"), item("a" * 65)]})) == (
        "requests.1.custom_id: String should have at most 64 characters"
    )


@pytest.mark.parametrize(
    "custom_id",
    [
        "has space",
        "dot.ted",
        "caf\u00e9",
        "\u0661\u0662",
        "slash/",
        "new\nline",
        "trailing\n",
        "tab\t",
        "a:b",
        "\uff41",
    ],
)
def test_custom_id_bad_characters(custom_id: str) -> None:
    assert rejection(body({"requests": [item(custom_id)]})) == (
        f"requests.0.custom_id: String should match pattern '{CUSTOM_ID_PATTERN}'"
    )


def test_duplicate_custom_id_names_both_indices() -> None:
    raw = body({"requests": [item("a"), item("dup"), item("b"), item("dup")]})
    message = rejection(raw)
    assert message.startswith("requests.3.custom_id: "), message
    assert "'dup'" in message
    assert "requests.1" in message


def test_custom_ids_are_case_sensitive() -> None:
    raw = body({"requests": [item("abc"), item("ABC")]})
    assert [item.custom_id for item in parse_create_body(raw, max_requests=2).requests] == [
        "abc",
        "ABC",
    ]


@pytest.mark.parametrize("value", ["x", "", 1, True, None, [], [{"model": "m"}]])
def test_params_not_an_object(value: Any) -> None:
    assert rejection(body({"requests": [item("ok"), item("b", value)]})) == (
        "requests.1.params: Input should be a valid dictionary"
    )


def test_first_problem_wins_in_request_order() -> None:
    raw = body({"requests": [item("ok"), item("bad id"), item("b", "x")]})
    assert rejection(raw).startswith("requests.1.custom_id: ")


def test_priority_is_an_optional_integer_in_its_range() -> None:
    requests = [item("a")]
    assert parse_create_body(body({"requests": requests}), max_requests=1).priority == 0
    parsed = parse_create_body(body({"requests": requests, "priority": -100}), max_requests=1)
    assert parsed.priority == -100
    for bad in (101, -101, 1.5, "high", None):
        with pytest.raises(ApiError) as caught:
            parse_create_body(body({"requests": requests, "priority": bad}), max_requests=1)
        assert caught.value.message.startswith("priority:"), caught.value.message
