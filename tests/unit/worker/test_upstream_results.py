"""An upstream batch's result lines as stored here: types kept, the client's model name,
usage at the batch tier (no I/O)."""

from __future__ import annotations

import json

from batchyard.engines.anthropic_batches import UpstreamLine, custom_id, row_of
from batchyard.worker.upstream_batches import _result

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "model": "claude-haiku-4-5",
    "content": [{"type": "text", "text": "hi", "future_field": 1}],
    "usage": {"input_tokens": 7, "output_tokens": 3, "service_tier": "standard"},
}


def line(kind: str, **fields: object) -> UpstreamLine:
    values: dict[str, object] = {"message": None, "error_type": "", "error_message": ""}
    values.update(fields)
    return UpstreamLine(row_id=5, type=kind, **values)  # type: ignore[arg-type]


def test_a_success_names_the_clients_model_and_is_billed_as_batch() -> None:
    stored = _result(line("succeeded", message=json.dumps(MESSAGE).encode()), "haiku")
    assert (stored.row_id, stored.state, stored.input_tokens, stored.output_tokens) == (
        5,
        "succeeded",
        7,
        3,
    )
    assert stored.outcome is not None
    message = json.loads(stored.outcome)["message"]
    assert message["model"] == "haiku" and message["usage"]["service_tier"] == "batch"
    assert message["content"] == MESSAGE["content"], "everything else as the upstream sent it"


def test_errors_canceled_and_expired_keep_their_types() -> None:
    errored = _result(line("errored", error_type="overloaded_error", error_message="busy"), "m")
    assert errored.state == "errored" and errored.outcome is not None
    assert json.loads(errored.outcome)["type"] == "overloaded_error"
    assert _result(line("canceled"), "m").state == "canceled"
    assert _result(line("expired"), "m").state == "expired"
    odd = _result(line("errored", error_type="brand_new_error", error_message="?"), "m")
    assert odd.outcome is not None and json.loads(odd.outcome)["type"] == "api_error"


def test_an_unknown_or_unreadable_result_is_an_error() -> None:
    for stored in (_result(line("vanished"), "m"), _result(line("succeeded", message=b"{"), "m")):
        assert stored.state == "errored" and stored.outcome is not None
        assert json.loads(stored.outcome)["type"] == "api_error"


def test_custom_ids_name_rows_and_nothing_else() -> None:
    assert row_of(custom_id(123)) == 123
    assert row_of("ticket-7") is None and row_of("r") is None and row_of("r1x") is None
