"""The grounder: grades an answer's sentences against the retrieved sources with the support
model, and decides the final answer (all sentences flagged, only the supported ones under
``strict``, or quotes when none is supported). The rules are in :mod:`rag.core.grounding`; this
module makes the model calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rag.core import grounding as g
from rag.core.ports import SupportScorer


@dataclass(frozen=True)
class GroundingPolicy:
    """``threshold``: the support a sentence needs (a setting chosen by measurement, see
    ``python -m bench.grounding``); ``extractive_sentences``: how many quotes a fallback gives."""

    threshold: float
    extractive_sentences: int = g.EXTRACTIVE_SENTENCES


class Grounder:
    def __init__(self, scorer: SupportScorer, policy: GroundingPolicy) -> None:
        self.scorer = scorer
        self.policy = policy

    async def grade(
        self,
        answer: str,
        spans: Sequence[g.Span],
        candidates: Sequence[g.Evidence],
        *,
        timeout: float | None = None,
    ) -> list[g.GradedSentence]:
        """The sentences at ``spans`` of ``answer``, each with its best evidence (one model call)."""
        if not spans:
            return []
        claims = [g.claim_text(answer[s.start : s.end]) for s in spans]
        pairs = [(claim, c.text) for claim in claims for c in candidates]
        flat = await self.scorer.support(pairs, timeout=timeout) if pairs else np.empty(0, np.float32)
        scores = np.asarray(flat, dtype=np.float32).reshape(len(spans), len(candidates))
        return g.grade(answer, spans, candidates, scores, threshold=self.policy.threshold)

    async def finish(
        self,
        question: str,
        answer: str,
        graded: Sequence[g.GradedSentence],
        candidates: Sequence[g.Evidence],
        *,
        strict: bool,
        timeout: float | None = None,
    ) -> g.Grounding:
        """The final answer from graded sentences: as generated (each flagged) or, under
        ``strict``, the supported ones only; quotes when no generated sentence is supported."""
        supported = sum(s.supported for s in graded)
        if supported == 0 and candidates:
            relevance = await self.scorer.support([(question, c.text) for c in candidates], timeout=timeout)
            text, quoted = g.extractive(
                candidates, np.asarray(relevance, np.float32), count=self.policy.extractive_sentences
            )
            return self._grounding(text, quoted, extractive=True, dropped=len(graded))
        if strict:
            text, kept = g.keep_supported(graded)
            return self._grounding(text, kept, extractive=False, dropped=len(graded) - len(kept))
        return self._grounding(answer, list(graded), extractive=False, dropped=0)

    def unanswered(self, answer: str) -> g.Grounding:
        """The grounding of an answer that makes no claim (nothing relevant was retrieved)."""
        return self._grounding(answer, [], extractive=False, dropped=0)

    def _grounding(
        self, answer: str, sentences: list[g.GradedSentence], *, extractive: bool, dropped: int
    ) -> g.Grounding:
        return g.Grounding(
            answer, sentences, extractive, dropped, self.policy.threshold, self.scorer.model_version
        )
