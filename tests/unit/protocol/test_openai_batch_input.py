"""The OpenAI batch input file's lines: envelopes checked line by line, bodies kept verbatim,
every bad line named by its 1-based number, however the file is cut into chunks."""

from __future__ import annotations

import json

import pytest

from batchyard.protocol.openai_batches import (
    MAX_LISTED_ERRORS,
    CreateError,
    InputFileReader,
    parse_create,
)

ENDPOINT = "/v1/chat/completions"


def line(custom_id: str, **overrides: object) -> bytes:
    entry: dict[str, object] = {
        "custom_id": custom_id,
        "method": "POST",
        "url": ENDPOINT,
        "body": {"model": "sim", "messages": [{"role": "user", "content": custom_id}]},
    }
    entry.update(overrides)
    return json.dumps(entry).encode()


def read(content: bytes, *, chunk: int = 7, max_lines: int = 50_000) -> InputFileReader:
    reader = InputFileReader(endpoint=ENDPOINT, max_lines=max_lines)
    for start in range(0, len(content), chunk):
        reader.feed(content[start : start + chunk])
    reader.errors = reader.finish()
    return reader


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_good_lines_are_kept_verbatim_in_order_whatever_the_chunks(chunk: int) -> None:
    body = b'{"model": "sim", "messages": [], "temperature": 1.10}'
    content = b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":' + body
    content += b"}\n\n" + line("b") + b"\r\n" + line("c")  # blank line, CRLF, no final newline
    reader = read(content, chunk=chunk)
    assert reader.errors == []
    assert [(p.custom_id, p.model) for p in reader.lines] == [
        ("a", "sim"),
        ("b", "sim"),
        ("c", "sim"),
    ]
    assert reader.lines[0].body == body


def test_every_bad_line_is_named_with_its_number_and_field() -> None:
    content = b"\n".join(
        [
            line("ok"),
            b"not json",
            line("ok"),
            line("m", method="GET"),
            line("u", url="/v1/embeddings"),
            line("nomodel", body={"messages": []}),
            line("x" * 65),
            b'{"custom_id": "k", "method": "POST"}',
        ]
    )
    errors = read(content).errors
    assert [(e.line, e.code, e.param) for e in errors] == [
        (2, "invalid_json_line", None),
        (3, "duplicate_custom_id", "custom_id"),
        (4, "invalid_method", "method"),
        (5, "mismatched_url", "url"),
        (6, "missing_model", "body.model"),
        (7, "invalid_custom_id", "custom_id"),
        (8, "invalid_request", "url"),
    ]
    assert "'ok' is used by an earlier line" in errors[1].message
    assert errors[6].message.startswith("url")


def test_an_empty_file_and_too_many_lines_fail_the_batch() -> None:
    assert [e.code for e in read(b"\n\n").errors] == ["empty_file"]
    content = b"\n".join(line(f"r{i}") for i in range(4))
    reader = read(content, max_lines=3)
    assert [e.code for e in reader.errors] == ["too_many_requests"]
    assert "more than 3 requests" in reader.errors[0].message


def test_errors_are_listed_up_to_a_cap_then_counted() -> None:
    reader = read(b"\n".join([b"{"] * (MAX_LISTED_ERRORS + 5)), chunk=1 << 20)
    assert len(reader.errors) == MAX_LISTED_ERRORS + 1
    assert reader.errors[-1].code == "too_many_errors"
    assert reader.errors[-1].message.startswith("5 more lines")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"endpoint": ENDPOINT, "completion_window": "24h"}, "input_file_id"),
        (
            {"input_file_id": "f", "endpoint": "/v1/embeddings", "completion_window": "24h"},
            "endpoint",
        ),
        (
            {"input_file_id": "f", "endpoint": ENDPOINT, "completion_window": "1h"},
            "completion_window",
        ),
        (
            {
                "input_file_id": "f",
                "endpoint": ENDPOINT,
                "completion_window": "24h",
                "metadata": {str(i): "v" for i in range(17)},
            },
            "metadata",
        ),
        (
            {
                "input_file_id": "f",
                "endpoint": ENDPOINT,
                "completion_window": "24h",
                "metadata": {"k": "v" * 513},
            },
            "metadata.k",
        ),
        (
            {"input_file_id": "f", "endpoint": ENDPOINT, "completion_window": "24h", "x": 1},
            "x",
        ),
    ],
)
def test_create_body_errors_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(CreateError) as raised:
        parse_create(json.dumps(body).encode())
    assert field in str(raised.value).split(":")[0] or field in str(raised.value)
