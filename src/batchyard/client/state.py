"""The state directory beside a run's output: what was submitted, so a run can be resumed.

``OUTPUT.batchyard/`` holds ``state.json`` (every round of batches: their rows, the
``Idempotency-Key`` each create carries and, once acknowledged, the batch id), ``results/``
(each ended batch's result lines, byte for byte as the server sent them) and, in embedded
mode, the embedded server's SQLite database.

A chunk's key is written before its create is sent and its batch id right after the answer,
each time with a write-then-rename, so that running the same command again never submits a
batch twice: a chunk with a batch id is only watched, and one without is created again with
the same key, which batchyard answers with the batch the first attempt made, if it made one.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

STATE_VERSION = 1


class Chunk(msgspec.Struct):
    """One batch of a round: which rows (0-based) it carries and what became of it."""

    rows: list[int]
    idempotency_key: str
    batch_id: str | None = None
    #: File under ``results/`` holding its result lines, once downloaded whole.
    results: str | None = None


class Round(msgspec.Struct):
    chunks: list[Chunk]


class RunState(msgspec.Struct):
    #: :attr:`~batchyard.client.plan.Requests.fingerprint` of the rows and options.
    fingerprint: str
    rounds: list[Round] = []
    version: int = STATE_VERSION


class StateError(ValueError):
    """The state directory cannot be used for this run."""


_decoder = msgspec.json.Decoder(RunState)
_encoder = msgspec.json.Encoder()


class StateDir:
    """``OUTPUT.batchyard/``: the files of one run."""

    def __init__(self, output: Path) -> None:
        self.path = output.with_name(output.name + ".batchyard")
        self.state_file = self.path / "state.json"
        self.results_dir = self.path / "results"

    @property
    def database_url(self) -> str:
        """The embedded server's database (embedded mode only)."""
        return f"sqlite:///{(self.path / 'batchyard.db').resolve()}"

    def results_file(self, batch_id: str) -> Path:
        return self.results_dir / f"{batch_id}.jsonl"

    def load(self, fingerprint: str) -> RunState | None:
        """The saved state of this run, ``None`` if none was started here.

        A state of other rows or options is refused: resuming it would mix two runs.
        """
        try:
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise StateError(
                f"{self.state_file}: unreadable ({exc}); remove it to start over"
            ) from None
        if state.version != STATE_VERSION:
            raise StateError(f"{self.state_file}: written by another version of batchyard")
        if state.fingerprint != fingerprint:
            raise StateError(
                f"{self.path} holds a run of other rows or options; run that command again "
                f"to resume it, or remove the directory to start over"
            )
        return state

    def save(self, state: RunState) -> None:
        """Write ``state`` whole: a crash leaves the old file or the new one, never half."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_name("state.json.part")
        with partial.open("wb") as out:
            out.write(_encoder.encode(state))
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self.state_file)
