from __future__ import annotations

from rag.models.text_stream import IncrementalDecoder, StopSequenceFilter


class ByteTokenizer:
    """One token per UTF-8 byte, like a byte-level BPE without merges."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def test_multibyte_characters_are_emitted_only_when_whole() -> None:
    decoder = IncrementalDecoder(ByteTokenizer())
    pieces = [decoder.push(b) for b in "aé€!".encode()]

    assert pieces == ["a", "", "é", "", "", "€", "!"]
    assert decoder.flush() == ""


def test_flush_releases_an_unfinished_character() -> None:
    decoder = IncrementalDecoder(ByteTokenizer())
    decoder.push(ord("a"))
    assert decoder.push("é".encode()[0]) == ""

    assert decoder.flush() == "\ufffd"


def test_stop_spanning_pieces_is_not_emitted() -> None:
    stops = StopSequenceFilter(["STOP"])

    assert stops.push("Hel") == "Hel"
    assert stops.push("lo ST") == "lo "  # "ST" may start the stop sequence: held
    assert stops.push("OP and more") == ""
    assert stops.stopped
    assert stops.push("ignored") == ""
    assert stops.flush() == ""


def test_held_text_that_is_no_stop_is_released() -> None:
    stops = StopSequenceFilter(["STOP"])

    assert stops.push("a ST") == "a "
    assert stops.push("AR") == "STAR"
    assert stops.push("S") == ""
    assert stops.push("ST") == "S"
    assert stops.flush() == "ST"
    assert not stops.stopped


def test_earliest_stop_wins_and_empty_stops_are_ignored() -> None:
    stops = StopSequenceFilter(["", "world", "lo w"])

    assert stops.push("hello world") == "hel"
    assert stops.stopped


def test_without_stops_text_passes_through() -> None:
    stops = StopSequenceFilter([])

    assert stops.push("abc") == "abc"
    assert stops.flush() == ""
