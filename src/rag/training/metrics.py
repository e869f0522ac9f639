"""Ranking metrics over graded relevance judgements (qrels): what the trainings gate on and
bench.quality reports.

The definitions follow trec_eval and BEIR's evaluation (which wraps pytrec_eval):

- nDCG@k: DCG = sum over the first k ranked documents of ``rel / log2(rank + 1)`` (linear
  gain), divided by the DCG of the ideal ordering of every judged document;
- Recall@k: relevant documents (relevance > 0) among the first k over all relevant ones;
- MRR@k: 1 / rank of the first relevant document within the first k, else 0.

A query without any relevant judgement is skipped (trec_eval does the same); the reported
value is the mean over the evaluated queries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]  # query id -> document id -> relevance grade
Run = Mapping[str, Sequence[tuple[str, float]]]  # query id -> [(document id, score)], best first


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {doc for doc, g in relevant.items() if g > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate(
    run: Run, qrels: Qrels, *, ndcg_k: int = 10, recall_k: int = 100, mrr_k: int = 10
) -> dict[str, float]:
    """Mean nDCG@ndcg_k, Recall@recall_k and MRR@mrr_k over queries with a relevant judgement.

    Ties in a run are broken as trec_eval does: by score, then by document id (descending),
    so the metric never depends on the order rows happened to arrive in.
    """
    totals = {f"ndcg@{ndcg_k}": 0.0, f"recall@{recall_k}": 0.0, f"mrr@{mrr_k}": 0.0}
    judged = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    for query in judged:
        ranked = [doc for doc, _ in sorted(run.get(query, ()), key=lambda r: (-r[1], _neg(r[0])))]
        relevant = qrels[query]
        totals[f"ndcg@{ndcg_k}"] += ndcg_at_k(ranked, relevant, ndcg_k)
        totals[f"recall@{recall_k}"] += recall_at_k(ranked, relevant, recall_k)
        totals[f"mrr@{mrr_k}"] += mrr_at_k(ranked, relevant, mrr_k)
    n = len(judged)
    return {name: (value / n if n else 0.0) for name, value in totals.items()} | {"queries": float(n)}


def _neg(doc: str) -> tuple[int, ...]:
    # trec_eval sorts equal scores by document id, descending; negate code points to sort ascending.
    return tuple(-ord(c) for c in doc)


def documents_from_chunks(hits: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """A document ranking from a chunk ranking: each document at its best chunk's place.

    Scores become ``1 / rank`` of that place, so the order is kept whatever the scores of the
    mode (distances, BM25, fused ranks) meant.
    """
    seen: dict[str, float] = {}
    for doc, _ in hits:
        if doc not in seen:
            seen[doc] = 1.0 / (len(seen) + 1)
    return list(seen.items())
