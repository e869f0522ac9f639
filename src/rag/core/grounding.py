"""Grounding: each answer sentence checked against the source sentence that best supports it.

The answer is cut into sentences (a citation marker after a full stop stays with its sentence).
Every sentence of the retrieved chunks is a candidate piece of evidence. A support model (the
:class:`rag.core.ports.SupportScorer` port) scores each (answer sentence, candidate) pair in
[0, 1]; a sentence's evidence is its best candidate, and it is *supported* when that score
reaches the threshold. Only supported sentences get a citation, so a citation always means "this
source sentence was checked and supports that answer sentence"; an unsupported sentence is
flagged, never presented as cited.

``strict`` keeps only supported sentences. When no generated sentence is supported, the answer is
extractive: the source sentences that best answer the question, quoted verbatim with their
citations (a verbatim quote is supported by its own source, support 1).

Pure: the scores come in as a matrix, computed by the caller through the port.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from rag.core.citations import Citation
from rag.core.prompts import Source

_MARKER = re.compile(r"\s*\[\d{1,3}\]")
# A sentence ends at . ! or ? (plus any citation markers and closing quotes or brackets right
# after it) when whitespace and a capital, a digit or an opening bracket follow, or at a line
# break. Decimals ("3.5") and abbreviations followed by a lower-case word do not end one.
_END = re.compile(r"[.!?](?:\s*\[\d{1,3}\])*[\"')\]]*(?=\s+[A-Z0-9\"'(\[]|\s*$)|\n+")
_WORD = re.compile(r"[A-Za-z0-9]")
_WORDS = re.compile(r"[a-z0-9]+")
# Words that carry no claim of their own, left out of word overlap.
_STOP = frozenset(
    [
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
    ]
)
# How many quoted sentences an extractive answer gives.
EXTRACTIVE_SENTENCES = 2


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Evidence:
    """One sentence of a retrieved chunk: ``source.text[start:end]``."""

    source: Source
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.source.text[self.start : self.end]

    def citation(self, support: float) -> Citation:
        s = self.source
        return Citation(
            s.number, s.chunk_id, s.document_id, s.title, s.page, self.text, self.start, self.end, support
        )


@dataclass(frozen=True)
class GradedSentence:
    text: str
    start: int
    end: int
    support: float
    supported: bool
    evidence: Citation | None


@dataclass(frozen=True)
class Grounding:
    answer: str
    sentences: list[GradedSentence]
    extractive: bool
    dropped: int
    threshold: float
    verifier_model_version: str

    @property
    def grounded_fraction(self) -> float:
        if not self.sentences:
            return 0.0
        return sum(s.supported for s in self.sentences) / len(self.sentences)

    @property
    def citations(self) -> list[Citation]:
        """One citation per distinct supporting source sentence, in answer order."""
        seen: dict[tuple[int, int, int], Citation] = {}
        for sentence in self.sentences:
            c = sentence.evidence
            if sentence.supported and c is not None:
                key = (c.chunk_id, c.quote_start, c.quote_end)
                if key not in seen or seen[key].support < c.support:
                    seen[key] = c
        return list(seen.values())


def sentence_spans(text: str) -> list[Span]:
    """The sentences of ``text`` as spans, whitespace trimmed, empty and marker-only ones dropped."""
    spans: list[Span] = []
    start = 0
    for match in _END.finditer(text):
        spans.append(Span(start, match.end()))
        start = match.end()
    spans.append(Span(start, len(text)))
    trimmed = []
    for span in spans:
        s, e = span.start, span.end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s and _WORD.search(_MARKER.sub("", text[s:e])):
            trimmed.append(Span(s, e))
        elif e > s and trimmed:  # a lone marker ("... bones. [2]") belongs to the sentence before
            trimmed[-1] = Span(trimmed[-1].start, e)
    return trimmed


def word_overlap(claim: str, premise: str) -> float:
    """The share of the claim's content words that the premise holds (0 for a claim without any)."""
    claim_words = {w for w in _WORDS.findall(claim.lower()) if w not in _STOP}
    if not claim_words:
        return 0.0
    return len(claim_words & set(_WORDS.findall(premise.lower()))) / len(claim_words)


def claim_text(sentence: str) -> str:
    """An answer sentence as the support model reads it: without citation markers."""
    return _MARKER.sub("", sentence).strip()


def evidence(sources: Sequence[Source]) -> list[Evidence]:
    """Every sentence of every source, in source order."""
    return [
        Evidence(source, span.start, span.end) for source in sources for span in sentence_spans(source.text)
    ]


def grade(
    answer: str,
    spans: Sequence[Span],
    candidates: Sequence[Evidence],
    scores: NDArray[np.float32],
    *,
    threshold: float,
) -> list[GradedSentence]:
    """Each answer sentence with its best evidence; ``scores[i, j]`` is the support of sentence
    ``i`` by candidate ``j``."""
    graded = []
    for i, span in enumerate(spans):
        text = answer[span.start : span.end]
        if not candidates:
            graded.append(GradedSentence(text, span.start, span.end, 0.0, False, None))
            continue
        j = int(np.argmax(scores[i]))
        support = float(scores[i, j])
        graded.append(
            GradedSentence(
                text, span.start, span.end, support, support >= threshold, candidates[j].citation(support)
            )
        )
    return graded


def _laid_out(sentences: Sequence[GradedSentence]) -> tuple[str, list[GradedSentence]]:
    """``sentences`` joined by single spaces, each span renumbered into the joined text."""
    laid: list[GradedSentence] = []
    offset = 0
    for sentence in sentences:
        laid.append(replace(sentence, start=offset, end=offset + len(sentence.text)))
        offset += len(sentence.text) + 1
    return " ".join(s.text for s in sentences), laid


def keep_supported(graded: Sequence[GradedSentence]) -> tuple[str, list[GradedSentence]]:
    """The answer rebuilt from the supported sentences only, spans renumbered into it."""
    return _laid_out([s for s in graded if s.supported])


def extractive(
    candidates: Sequence[Evidence], relevance: NDArray[np.float32], *, count: int = EXTRACTIVE_SENTENCES
) -> tuple[str, list[GradedSentence]]:
    """The ``count`` candidates most relevant to the question (``relevance[j]`` for candidate
    ``j``), quoted verbatim in source order, each with its citation marker."""
    best = sorted(np.argsort(-relevance, kind="stable")[:count].tolist()) if candidates else []
    quoted = []
    for j in best:
        chosen = candidates[j]
        text = f'"{chosen.text}" [{chosen.source.number}]'
        quoted.append(GradedSentence(text, 0, len(text), 1.0, True, chosen.citation(1.0)))
    return _laid_out(quoted)
