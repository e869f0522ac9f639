"""Judging a ranking model on held-back labelled queries: the search's own order against the
order the model gives its first candidates, in nDCG@10 and MRR@10 (rag.training.metrics).

A reranker reorders the first ``depth`` chunks of each query (as Search does when serving) and
leaves the rest in the search's order behind them; a document ranks at its best chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rag.training.candidates import RankedCandidates, hybrid_run, qrels
from rag.training.metrics import Run, documents_from_chunks, evaluate

PairScorer = Callable[[Sequence[tuple[str, str]]], NDArray[np.float32]]
Encoder = Callable[[Sequence[str]], NDArray[np.float32]]

NDCG = "ndcg@10"
MRR = "mrr@10"


@dataclass(frozen=True)
class Comparison:
    """Metrics of the search alone and of the search reranked, over the same queries."""

    queries: int
    hybrid: dict[str, float]
    reranked: dict[str, float]

    @property
    def gain(self) -> float:
        return self.reranked[NDCG] - self.hybrid[NDCG]

    def as_metrics(self, prefix: str = "") -> dict[str, float]:
        out = {f"{prefix}queries": float(self.queries)}
        for mode, values in (("hybrid", self.hybrid), ("reranked", self.reranked)):
            out |= {f"{prefix}{mode}_{name.replace('@', '_at_')}": values[name] for name in (NDCG, MRR)}
        return out | {f"{prefix}ndcg_at_10_gain": self.gain}


def reranked_run(lists: Sequence[RankedCandidates], score: PairScorer, *, depth: int) -> Run:
    """Each query's first ``depth`` candidates in the scorer's order, the rest after them."""
    heads = [r.candidates[:depth] for r in lists]
    flat = [(r.query, c.text) for r, head in zip(lists, heads, strict=True) for c in head]
    scores = score(flat) if flat else np.empty((0,), dtype=np.float32)
    run: dict[str, list[tuple[str, float]]] = {}
    offset = 0
    for ranked, head in zip(lists, heads, strict=True):
        mine = scores[offset : offset + len(head)]
        offset += len(head)
        order = sorted(range(len(head)), key=lambda i: -float(mine[i]))
        chunks = [head[i] for i in order] + list(ranked.candidates[depth:])
        run[ranked.key] = documents_from_chunks((c.document_id, 0.0) for c in chunks)
    return run


def similarity_scorer(encode: Encoder) -> PairScorer:
    """An embedder as a :data:`PairScorer`: the cosine of the query's and the passage's vectors
    (each distinct text encoded once), so an embedder is judged by the order it gives the same
    candidates a reranker reorders."""

    def score(pairs: Sequence[tuple[str, str]]) -> NDArray[np.float32]:
        if not pairs:
            return np.empty((0,), dtype=np.float32)
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        vectors = np.asarray(encode(texts), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        at = {t: i for i, t in enumerate(texts)}
        return np.asarray([float(vectors[at[q]] @ vectors[at[p]]) for q, p in pairs], dtype=np.float32)

    return score


def compare(lists: Sequence[RankedCandidates], score: PairScorer, *, depth: int) -> Comparison:
    judged = qrels(lists)
    return Comparison(
        queries=sum(1 for g in judged.values() if any(v > 0 for v in g.values())),
        hybrid=evaluate(hybrid_run(lists), judged),
        reranked=evaluate(reranked_run(lists, score, depth=depth), judged),
    )
