"""The labelled part of ``reembed_index``'s gate: hybrid nDCG@10 of the re-embedded index on a
tenant's held-back labelled queries, against that of the serving index.

A fine-tuned embedder (``finetune_embedder``) names the tenant, its held-back split (fraction
and seed: :func:`rag.training.splits.held_back` gives the same queries it was judged on, and
never trained on) and the hybrid nDCG@10 those queries had on the serving index when it was
trained. Here each held-back query is searched as Search does it, on the shadow version: the
new vectors (dense, ``k`` nearest) fused by reciprocal rank with BM25 (the chunk texts are the
same under both versions; BM25 reads the serving version's statistics, which the shadow rows
only get at the cutover). The cutover happens only when the shadow index is at least as good.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from rag.adapters.postgres.labels import LabelRepository
from rag.adapters.postgres.reembedding import ShadowIndex
from rag.adapters.postgres.search import SearchRepository
from rag.core.errors import InvalidInput
from rag.core.ports import Embedder
from rag.core.ranking import HYBRID_RRF_K, reciprocal_rank_fusion
from rag.core.search import Filters
from rag.training.metrics import evaluate
from rag.training.splits import held_back

DEPTH = 50  # what Search fuses for a top 10 (max(50, 2 * top_k))


@dataclass(frozen=True)
class HeldBackLabels:
    tenant: str
    held_back_fraction: float
    seed: int
    baseline_ndcg_at_10: float

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> HeldBackLabels | None:
        if not raw or not raw.get("tenant"):
            return None
        try:
            return cls(
                str(raw["tenant"]),
                float(raw["held_back_fraction"]),
                int(raw["seed"]),
                float(raw["baseline_ndcg_at_10"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                "labels needs tenant, held_back_fraction, seed and baseline_ndcg_at_10", field="labels"
            ) from exc


def held_back_ndcg(
    pool: ConnectionPool, embed: Embedder, labels: HeldBackLabels, *, source: str, target: str
) -> tuple[float, int]:
    """(hybrid nDCG@10 on the shadow version, how many held-back queries it was measured on)."""
    queries = [
        q
        for q in LabelRepository(pool).labelled_queries(labels.tenant)
        if any(g > 0 for g in q.grades.values())
    ]
    if len(queries) < 2:
        return 0.0, 0
    _, held = held_back([q.key for q in queries], labels.held_back_fraction, seed=labels.seed)
    keep = set(held)
    judged = [q for q in queries if q.key in keep]
    search = SearchRepository(pool)
    shadow = ShadowIndex(pool, source=source, target=target)
    vectors = embed([q.text for q in judged])
    run: dict[str, list[tuple[str, float]]] = {}
    for query, vector in zip(judged, vectors, strict=True):
        dense = search.dense(tenant=labels.tenant, version=target, vector=vector, k=DEPTH, filters=Filters())
        lexical = search.lexical(
            tenant=labels.tenant, version=source, query=query.text, k=DEPTH, filters=Filters()
        )
        where = shadow.positions_of([i for i, _ in dense] + [i for i, _ in lexical])
        fused = reciprocal_rank_fusion(
            [[where[i] for i, _ in dense if i in where], [where[i] for i, _ in lexical if i in where]],
            k=HYBRID_RRF_K,
        )
        ranked: dict[str, float] = {}
        for (document, _), _score in fused:
            ranked.setdefault(document, 1.0 / (len(ranked) + 1))
        run[query.key] = list(ranked.items())
    metrics = evaluate(run, {q.key: dict(q.grades) for q in judged})
    return metrics["ndcg@10"], len(judged)
