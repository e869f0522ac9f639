"""Token-aware chunking that respects document structure (SPEC §1).

A chunk never crosses a heading or a page: each section (the blocks under one heading on one
page) is chunked on its own. Within a section, paragraphs are packed until the next would pass
``chunk_tokens``; a paragraph that is too long alone is split at sentence ends, and a sentence
that is still too long at word boundaries. Consecutive chunks of a section share about ``overlap_tokens`` of
trailing sentences. Every chunk's text is the exact slice ``text[char_start:char_end]`` of the
extracted text, so citations can quote it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rag.core.documents import Block, Chunk, ParsedDocument
from rag.core.errors import InvalidInput

TokenCounter = Callable[[str], int]

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=\S)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkingOptions:
    chunk_tokens: int = 200
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if not 16 <= self.chunk_tokens <= 8192:
            raise InvalidInput("must be between 16 and 8192", field="chunk_tokens")
        if not 0 <= self.overlap_tokens < self.chunk_tokens // 2 + 1:
            raise InvalidInput("must be at least 0 and at most half of chunk_tokens", field="overlap_tokens")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    page: int | None


# Bounds that keep the tokenizer and every chunk small whatever the input: a piece longer than
# ``limit * _MAX_CHARS_PER_TOKEN`` characters is never counted whole (it is split at words first),
# and a "word" longer than ``_MAX_WORD_CHARS`` (a megabyte without a space) is cut into slices.
_MAX_CHARS_PER_TOKEN = 16
_MAX_WORD_CHARS = 256


def _words(piece: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each whitespace-separated word, long words cut into slices."""
    for match in _WORD.finditer(piece):
        for start in range(match.start(), match.end(), _MAX_WORD_CHARS):
            yield start, min(start + _MAX_WORD_CHARS, match.end())


def _sentences(block: Block, text: str, count: TokenCounter, limit: int) -> Iterator[_Unit]:
    """Split a block into units no longer than ``limit`` tokens (sentences, then word runs)
    and ``limit * _MAX_CHARS_PER_TOKEN`` characters."""
    body = text[block.start : block.end]
    max_chars = limit * _MAX_CHARS_PER_TOKEN
    cuts = [0, *(m.end() for m in _SENTENCE_END.finditer(body)), len(body)]
    for lo, hi in itertools.pairwise(cuts):
        piece = body[lo:hi].rstrip()
        if not piece.strip():
            continue
        if len(piece) <= max_chars:
            tokens = count(piece)
            if tokens <= limit:
                yield _Unit(block.start + lo, block.start + lo + len(piece), tokens, block.page)
                continue
        run_start: int | None = None
        run_tokens = prev_end = 0
        for start, end in _words(piece):
            word_tokens = max(1, count(piece[start:end]))
            if run_start is not None and (run_tokens + word_tokens > limit or end - run_start > max_chars):
                yield _Unit(block.start + lo + run_start, block.start + lo + prev_end, run_tokens, block.page)
                run_start, run_tokens = None, 0
            if run_start is None:
                run_start = start
            run_tokens += word_tokens
            prev_end = end
        if run_start is not None:
            yield _Unit(block.start + lo + run_start, block.start + lo + prev_end, run_tokens, block.page)


def _sections(blocks: tuple[Block, ...]) -> Iterator[list[Block]]:
    """Consecutive non-heading blocks under the same heading path and on the same page.

    Pages split sections too, so a chunk's page number is exact for citations.
    """
    current: list[Block] = []
    for block in blocks:
        if block.is_heading or (
            current and (block.heading, block.page) != (current[-1].heading, current[-1].page)
        ):
            if current:
                yield current
            current = []
        if not block.is_heading and block.text.strip():
            current.append(block)
    if current:
        yield current


def chunk_document(
    doc: ParsedDocument, count: TokenCounter, options: ChunkingOptions | None = None
) -> list[Chunk]:
    options = options or ChunkingOptions()
    limit = options.chunk_tokens
    max_chars = limit * _MAX_CHARS_PER_TOKEN
    chunks: list[Chunk] = []

    def emit(units: list[_Unit], heading: str | None) -> None:
        start, end = units[0].start, units[-1].end
        text = doc.text[start:end]
        chunks.append(
            Chunk(
                ordinal=len(chunks),
                text=text,
                char_start=start,
                char_end=end,
                token_count=count(text),
                heading=heading,
                page=units[0].page,
            )
        )

    for section in _sections(doc.blocks):
        heading = section[0].heading
        units = [u for block in section for u in _sentences(block, doc.text, count, limit)]
        window: list[_Unit] = []
        window_tokens = 0
        fresh = 0  # units in the window not yet emitted in an earlier chunk
        for unit in units:
            if window and (window_tokens + unit.tokens > limit or unit.end - window[0].start > max_chars):
                emit(window, heading)
                # Carry trailing units (at most overlap_tokens) into the next chunk.
                carried: list[_Unit] = []
                carried_tokens = 0
                for previous in reversed(window):
                    if carried_tokens + previous.tokens > options.overlap_tokens:
                        break
                    carried.insert(0, previous)
                    carried_tokens += previous.tokens
                if carried_tokens + unit.tokens > limit or (
                    carried and unit.end - carried[0].start > max_chars
                ):
                    carried, carried_tokens = [], 0
                window, window_tokens, fresh = carried, carried_tokens, 0
            window.append(unit)
            window_tokens += unit.tokens
            fresh += 1
        if window and fresh:
            emit(window, heading)
    return chunks
