"""Turning generated token ids into a clean text stream.

Two small state machines the generator chains per token: :class:`IncrementalDecoder`
emits text only once it is whole (a multi-byte character may span tokens), and
:class:`StopSequenceFilter` holds back text that may be the start of a stop sequence so
that a stop sequence is never emitted, even when it spans several tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """Decodes a growing list of token ids into new text pieces.

    Decoding each token alone breaks byte-level and SentencePiece tokenizers (split UTF-8
    characters, lost word-leading spaces), so each step decodes a short window of recent
    ids and emits only what the newest id added, once it no longer ends in a partial
    character (the approach of text-generation-inference).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0
        self._read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def push(self, token_id: int) -> str:
        """Add one token id; return the text it completes (often one word piece, maybe "")."""
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix_offset : self._read_offset])
        text = self._decode(self._ids[self._prefix_offset :])
        if len(text) > len(before) and not text.endswith(_REPLACEMENT):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return text[len(before) :]
        return ""

    def flush(self) -> str:
        """Whatever text is still held back (at the end of the stream)."""
        before = self._decode(self._ids[self._prefix_offset : self._read_offset])
        text = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return text[len(before) :]


class StopSequenceFilter:
    """Passes text through until a stop sequence appears; the stop sequence is not emitted.

    Text that could be the beginning of a stop sequence is held back until the next piece
    decides it. After a stop, :attr:`stopped` is true and nothing more passes.
    """

    def __init__(self, stop: Iterable[str] = ()) -> None:
        self._stop = tuple(s for s in stop if s)
        self._pending = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """Add generated text; return what can be emitted now."""
        if self.stopped:
            return ""
        if not self._stop:
            return text
        self._pending += text
        hits = [i for s in self._stop if (i := self._pending.find(s)) >= 0]
        if hits:
            self.stopped = True
            emitted, self._pending = self._pending[: min(hits)], ""
            return emitted
        held = self._held_suffix_length()
        cut = len(self._pending) - held
        emitted, self._pending = self._pending[:cut], self._pending[cut:]
        return emitted

    def flush(self) -> str:
        """Release held-back text at the end of the stream (it was not a stop sequence)."""
        emitted, self._pending = ("" if self.stopped else self._pending), ""
        return emitted

    def _held_suffix_length(self) -> int:
        longest = min(len(self._pending), max(len(s) for s in self._stop) - 1)
        for size in range(longest, 0, -1):
            tail = self._pending[-size:]
            if any(s.startswith(tail) for s in self._stop):
                return size
        return 0
