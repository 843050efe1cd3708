"""Turning generated tokens into text as they arrive, and spotting stop sequences in it.

Decoding token by token is wrong for byte-level BPE: one character may span tokens (the
first half decodes to U+FFFD) and a stop sequence may start in one token and end in the
next. :class:`TextStream` therefore decodes a sliding window of tokens and only commits text
once it is complete, and searches each new piece together with the tail of what came before.
Each step costs O(window), not O(answer), so long answers stay linear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Decode = Callable[[Sequence[int]], str]


@dataclass(frozen=True)
class StopMatch:
    sequence: str
    #: Index in :attr:`TextStream.text` where the stop sequence starts; the answer ends there.
    start: int


class TextStream:
    """The text of one answer, grown one token at a time."""

    def __init__(
        self, decode: Decode, stop_sequences: Sequence[str] = (), *, incremental: bool = False
    ) -> None:
        """``incremental``: commit text as it comes even with no stop sequence (streaming)."""
        self._decode = decode
        self._incremental = incremental
        self._stops = [stop for stop in dict.fromkeys(stop_sequences) if stop]
        self._longest = max((len(stop) for stop in self._stops), default=0)
        self._tokens: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0
        self._parts: list[str] = []
        self._length = 0
        self._tail = ""

    @property
    def text(self) -> str:
        """All text committed so far."""
        return "".join(self._parts)

    @property
    def safe_length(self) -> int:
        """How much of :attr:`text` is final: the tail that could still start a stop
        sequence (one character short of the longest) is held back."""
        return max(0, self._length - max(0, self._longest - 1))

    def push(self, token: int) -> StopMatch | None:
        """Add a generated token; return the earliest stop sequence it completes, if any."""
        self._tokens.append(token)
        if not self._stops and not self._incremental:
            return None  # nothing to watch for or stream: decode once, in finish()
        previous = self._decode(self._tokens[self._prefix_offset : self._read_offset])
        current = self._decode(self._tokens[self._prefix_offset :])
        if len(current) <= len(previous) or current.endswith("\ufffd"):
            return None  # an incomplete character: wait for the token that finishes it
        self._prefix_offset = self._read_offset
        self._read_offset = len(self._tokens)
        return self._commit(current[len(previous) :])

    def finish(self) -> None:
        """Commit what is still held back (an answer cut inside a multi-byte character).

        Call once, when the answer ends, before reading :attr:`text`.
        """
        previous = self._decode(self._tokens[self._prefix_offset : self._read_offset])
        current = self._decode(self._tokens[self._prefix_offset :])
        if len(current) > len(previous):
            self._commit(current[len(previous) :])

    def _commit(self, piece: str) -> StopMatch | None:
        start_of_piece = self._length
        self._parts.append(piece)
        self._length += len(piece)
        if not self._stops:
            return None
        # A stop sequence completed now must end inside ``piece``; it may begin in the tail.
        window = self._tail + piece
        window_start = start_of_piece - len(self._tail)
        self._tail = window[-(self._longest - 1) :] if self._longest > 1 else ""
        found = [(window.find(stop), stop) for stop in self._stops]
        hits = [(index, stop) for index, stop in found if index >= 0]
        if not hits:
            return None
        index, stop = min(hits, key=lambda hit: (hit[0], -len(hit[1])))
        return StopMatch(stop, window_start + index)
