"""Citations: which retrieved chunks an answer used, with a quoted span checked against the chunk.

The answer's ``[n]`` markers name sources; a marker that names no source is dropped. For each
cited source, the quote is the chunk sentence that best supports the answer sentence carrying
the marker, given as an exact character span of the chunk, and verified to be that span. An
answer without markers (small models often omit them) is attributed by overlap instead: each
answer sentence is matched to the source sentence it shares most words with, above a floor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.core.prompts import Source

_MARKER = re.compile(r"\[(\d{1,3})\]")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "were",
        "with",
        "which",
        "who",
        "what",
        "when",
        "how",
        "why",
        "does",
        "do",
        "not",
        "no",
        "can",
        "may",
    }
)
MIN_OVERLAP = 0.3


@dataclass(frozen=True)
class Citation:
    number: int
    chunk_id: int
    document_id: str
    title: str
    page: int | None
    quote: str
    quote_start: int
    quote_end: int


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a) if a else 0.0


def _best_quote(claim: str, source: Source) -> tuple[float, int, int]:
    claim_words = _words(claim)
    best = (0.0, 0, 0)
    for start, end in _spans(source.text):
        score = _overlap(claim_words, _words(source.text[start:end]))
        if score > best[0]:
            best = (score, start, end)
    return best


def _citation(source: Source, start: int, end: int) -> Citation:
    # The quote is the chunk's own text at the span it names (tests check this with verify()).
    return Citation(
        source.number,
        source.chunk_id,
        source.document_id,
        source.title,
        source.page,
        source.text[start:end],
        start,
        end,
    )


def extract_citations(answer: str, sources: Sequence[Source]) -> list[Citation]:
    by_number = {s.number: s for s in sources}
    citations: dict[int, Citation] = {}
    sentences = [answer[s:e] for s, e in _spans(answer)] or [answer]
    for sentence in sentences:
        for marker in _MARKER.findall(sentence):
            source = by_number.get(int(marker))
            if source is None or source.number in citations:
                continue
            claim = _MARKER.sub("", sentence)
            score, start, end = _best_quote(claim, source)
            if score == 0.0:  # nothing in common: quote the chunk's first sentence
                start, end = (_spans(source.text) or [(0, len(source.text))])[0]
            citations[source.number] = _citation(source, start, end)
    if citations:
        return sorted(citations.values(), key=lambda c: c.number)
    for sentence in sentences:
        scored = [(_best_quote(sentence, source), source) for source in sources]
        if not scored:
            break
        (score, start, end), source = max(scored, key=lambda item: item[0][0])
        if score >= MIN_OVERLAP and source.number not in citations:
            citations[source.number] = _citation(source, start, end)
    return sorted(citations.values(), key=lambda c: c.number)


def verify(citation: Citation, chunk_text: str) -> bool:
    """True when the quote is exactly the cited span of the chunk's text."""
    return chunk_text[citation.quote_start : citation.quote_end] == citation.quote and bool(citation.quote)
