"""Support scorers: the :class:`rag.core.ports.SupportScorer` adapters over served models.

:class:`EmbeddingSupport` scores with the serving embedder: the cosine similarity of claim and
premise, mapped to a probability by a logistic fit on labelled (claim, sentence) pairs
(``python -m bench.grounding calibrate`` measures it; the defaults below are its result).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from rag.core.grounding import word_overlap
from rag.core.ports import Priority, QueryModels

# Logistic fit of P(supports | cosine, overlap) on SciFact train claims (SUPPORT rationales
# against CONTRADICT rationales, other sentences of the same abstracts and random sentences),
# with all-MiniLM-L6-v2: `python -m bench.support`.
COSINE_WEIGHT = 4.3
OVERLAP_WEIGHT = 0.9
INTERCEPT = -3.44


def _sigmoid(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float32)


class EmbeddingSupport:
    """Support as calibrated embedding similarity (one embedder call per grading)."""

    def __init__(
        self,
        models: QueryModels,
        *,
        cosine_weight: float = COSINE_WEIGHT,
        overlap_weight: float = OVERLAP_WEIGHT,
        intercept: float = INTERCEPT,
    ) -> None:
        self.models = models
        self.weights = (cosine_weight, overlap_weight)
        self.intercept = intercept

    @property
    def model_version(self) -> str:
        return "embedder-cosine"

    async def support(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float | None = None
    ) -> NDArray[np.float32]:
        if not pairs:
            return np.empty((0,), dtype=np.float32)
        texts = list(dict.fromkeys(text for pair in pairs for text in pair))
        row = {text: i for i, text in enumerate(texts)}
        vectors = await self.models.embed(texts, priority=Priority.GENERATION, timeout=timeout)
        claims = vectors[[row[claim] for claim, _ in pairs]]
        premises = vectors[[row[premise] for _, premise in pairs]]
        cosine = np.einsum("ij,ij->i", claims, premises).astype(np.float32)
        overlap = np.array([word_overlap(claim, premise) for claim, premise in pairs], dtype=np.float32)
        return _sigmoid(self.weights[0] * cosine + self.weights[1] * overlap + self.intercept)
