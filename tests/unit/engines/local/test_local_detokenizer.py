"""TextStream without a model: a toy byte-level vocabulary stands in for the tokenizer."""

from __future__ import annotations

from collections.abc import Sequence

from batchyard.engines.local.detokenizer import StopMatch, TextStream

# Byte-level pieces, as in GPT-2 style BPE: "é" is split across tokens 5 and 6.
VOCAB: dict[int, bytes] = {
    1: b"Hel",
    2: b"lo",
    3: b" wor",
    4: b"ld",
    5: "é".encode()[:1],
    6: "é".encode()[1:],
    7: b"\n\nHu",
    8: b"man:",
    9: b"!",
}


def decode(tokens: Sequence[int]) -> str:
    return b"".join(VOCAB[token] for token in tokens).decode("utf-8", errors="replace")


def feed(stream: TextStream, tokens: Sequence[int]) -> list[StopMatch | None]:
    return [stream.push(token) for token in tokens]


def test_text_is_the_full_decode() -> None:
    for stops in ([], ["zzz"]):
        stream = TextStream(decode, stops)
        feed(stream, [1, 2, 3, 4, 9])
        stream.finish()
        assert stream.text == "Hello world!"


def test_a_character_split_across_tokens_is_held_back_until_complete() -> None:
    stream = TextStream(decode, ["zzz"])
    feed(stream, [1, 5])
    assert stream.text == "Hel"
    feed(stream, [6])
    assert stream.text == "Helé"


def test_finish_commits_a_dangling_partial_character() -> None:
    stream = TextStream(decode, ["zzz"])
    feed(stream, [1, 5])
    stream.finish()
    assert stream.text == "Hel\ufffd"


def test_stop_sequence_spanning_token_boundaries() -> None:
    stream = TextStream(decode, ["lo wo"])
    matches = feed(stream, [1, 2, 3])
    assert matches[:2] == [None, None]
    assert matches[2] == StopMatch("lo wo", 3)
    assert stream.text[:3] == "Hel"


def test_stop_sequence_spanning_three_tokens_and_a_split_character() -> None:
    stream = TextStream(decode, ["dé\n\nHuman:"])
    assert feed(stream, [1, 2, 3, 4, 5, 6, 7]) == [None] * 7
    match = stream.push(8)
    assert match == StopMatch("dé\n\nHuman:", len("Hello worl"))


def test_earliest_stop_sequence_wins() -> None:
    stream = TextStream(decode, ["world", "lo"])
    assert feed(stream, [1, 2]) == [None, StopMatch("lo", 3)]


def test_no_match_without_stop_sequences_or_on_a_miss() -> None:
    assert feed(TextStream(decode), [1, 2, 3, 4]) == [None] * 4
    assert feed(TextStream(decode, ["xyz", ""]), [1, 2, 3, 4]) == [None] * 4


def test_a_stop_sequence_found_only_once_it_is_complete() -> None:
    stream = TextStream(decode, ["Hello world"])
    assert feed(stream, [1, 2, 3]) == [None, None, None]
    assert stream.push(4) == StopMatch("Hello world", 0)
