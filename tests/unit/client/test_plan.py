"""Cutting rows into batches, the bodies sent, and what the state directory keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchyard.client.plan import Requests, batch_body, split
from batchyard.client.results import RowResult, read_results
from batchyard.client.state import Chunk, Round, RunState, StateDir, StateError


def requests_of(sizes: list[int]) -> Requests:
    """Requests whose encoded items have exactly ``sizes`` bytes."""
    items = []
    for n, size in enumerate(sizes):
        head = f'{{"custom_id":"{n}","params":{{"pad":"'.encode()
        items.append(head + b"x" * (size - len(head) - 3) + b'"}}')
        assert len(items[-1]) == size
    return Requests([str(n) for n in range(len(sizes))], [b"{}"] * len(sizes), items)


def test_split_respects_count_and_bytes_and_keeps_order() -> None:
    requests = requests_of([100] * 10)
    assert split(range(10), requests, max_requests=4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # 15 bytes of envelope, 101 per item with its comma: three fit in 318, not four.
    assert split(range(10), requests, max_bytes=15 + 3 * 101) == [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7, 8],
        [9],
    ]
    body = batch_body(requests, [0, 1, 2])
    assert len(body) <= 15 + 3 * 101
    assert [item["custom_id"] for item in json.loads(body)["requests"]] == ["0", "1", "2"]
    assert split([7, 2, 9], requests, max_requests=2) == [[7, 2], [9]]


def test_a_request_larger_than_a_batch_names_its_row() -> None:
    requests = requests_of([100, 5000])
    with pytest.raises(ValueError, match="row 2: its request is 5,001 bytes"):
        split(range(2), requests, max_bytes=2000)


def test_fingerprint_changes_with_any_byte() -> None:
    one, other = requests_of([100, 120]), requests_of([100, 121])
    assert one.fingerprint == requests_of([100, 120]).fingerprint != other.fingerprint


def test_state_round_trips_and_refuses_another_run(tmp_path: Path) -> None:
    state_dir = StateDir(tmp_path / "out.csv")
    assert state_dir.path == tmp_path / "out.csv.batchyard"
    assert state_dir.load("abc") is None
    state = RunState("abc", [Round([Chunk([0, 1], "key-0", batch_id="msgbatch_1")])])
    state_dir.save(state)
    assert state_dir.load("abc") == state
    with pytest.raises(StateError, match="other rows or options"):
        state_dir.load("def")
    state_dir.state_file.write_text("{not json")
    with pytest.raises(StateError, match="unreadable"):
        state_dir.load("abc")


def test_result_lines_read_leniently(tmp_path: Path) -> None:
    lines = [
        {
            "custom_id": "a",
            "result": {
                "type": "succeeded",
                "message": {
                    "id": "msg_1",
                    "content": [
                        {"type": "thinking", "thinking": "hm"},
                        {"type": "text", "text": "Hello"},
                        {"type": "text", "text": " world"},
                    ],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 5, "output_tokens": 2, "new_field": 1},
                },
            },
        },
        {
            "custom_id": "b",
            "result": {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "overloaded_error", "message": "busy"},
                    "request_id": None,
                },
            },
        },
        {"custom_id": "c", "result": {"type": "expired"}},
        {"custom_id": "d", "result": {"type": "canceled"}},
        {
            "custom_id": "e",
            "result": {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "no"},
                },
            },
        },
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    read = dict(read_results(path))
    assert read["a"] == RowResult("succeeded", "Hello world", "end_turn", 5, 2)
    assert read["b"].error_type == "overloaded_error" and read["b"].retryable
    assert read["c"].retryable and not read["d"].retryable
    assert not read["e"].retryable and read["e"].error_message == "no"
    path.write_text("garbage\n")
    with pytest.raises(ValueError, match="line 1: not a result line"):
        list(read_results(path))
