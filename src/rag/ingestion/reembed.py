"""Re-embed every chunk with a new embedder version into a shadow index, gate it, cut over.

1. :func:`plan_reembed` records the new version as ``building``; :func:`split` cuts the
   serving version's chunks into id ranges (one mapped task each).
2. :func:`embed_range` writes shadow rows: same chunk, new vector, own BM25 postings. It skips
   chunks already done, so a retried or re-run task resumes.
3. :func:`quality_gate`: self-retrieval on sampled shadow chunks (the query is a sentence of the
   chunk, the target is the chunk; recall@k on the new version) and, optionally, labelled
   queries (query -> document). Below the threshold, :func:`reject` marks the version failed
   with the reason and deletes its shadow rows; the old version never stops serving.
4. :func:`cut_over` flips ``embedding_indexes`` (new active, old retired) in one transaction,
   after embedding whatever was ingested meanwhile; :func:`retire` then deletes the old rows.

Search filters by the active version throughout, so it serves the old index until step 4.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.documents import DocumentRepository
from rag.adapters.postgres.indexes import IndexRegistry
from rag.adapters.postgres.reembedding import ShadowIndex, SourceChunk
from rag.adapters.postgres.search import SearchRepository
from rag.core.documents import EMBEDDING_DIMENSION
from rag.core.errors import FailedPrecondition
from rag.core.ports import Embedder
from rag.core.search import Filters
from rag.ingestion.reembed_labels import HeldBackLabels, held_back_ndcg

log = logging.getLogger(__name__)

# Chunks per embedding call: two of the embedder's batches of 32 in flight keep Triton's dynamic
# batcher busy, while one call of long chunks stays well inside the client's deadline.
EMBED_BATCH = 64
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class ReembedPlan:
    source: str
    target: str
    chunks: int

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "chunks": self.chunks}


def _vectors(embed: Embedder, texts: Sequence[str]) -> NDArray[np.float32]:
    vectors = np.asarray(embed(texts), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise FailedPrecondition(f"the embedder returned shape {vectors.shape} for {len(texts)} texts")
    if vectors.shape[1] != EMBEDDING_DIMENSION:
        raise FailedPrecondition(
            f"the embedder returns {vectors.shape[1]}-dim vectors; chunks store {EMBEDDING_DIMENSION} "
            "(a new dimension needs a migration of chunks.embedding first)"
        )
    return vectors


def plan_reembed(pool: ConnectionPool, embed: Embedder, *, model_version: str) -> ReembedPlan | None:
    """The work to re-embed into ``model_version`` (empty: the newest ``building`` version, as
    recorded by a promotion); None when there is nothing to do."""
    registry = IndexRegistry(pool)
    active = registry.active()
    if active is None:
        raise FailedPrecondition("no embedding index is active yet: ingest documents first")
    if not model_version:
        building = registry.newest_building()
        if building is None:
            log.info("no embedding version waiting to be built; %s serves", active.model_version)
            return None
        model_version = building.model_version
    if model_version == active.model_version:
        log.info("%s is already the active version: nothing to re-embed", model_version)
        return None
    _vectors(embed, ["dimension probe"])  # the embedder answers, with the dimension chunks store
    registry.start_building(model_version, EMBEDDING_DIMENSION)
    shadow = ShadowIndex(pool, source=active.model_version, target=model_version)
    plan = ReembedPlan(active.model_version, model_version, shadow.count(active.model_version))
    log.info("re-embedding %d chunks of %s into %s", plan.chunks, plan.source, plan.target)
    return plan


def split(pool: ConnectionPool, *, source: str, target: str, per_range: int) -> list[list[int]]:
    """[lo, hi] id ranges of about ``per_range`` source chunks each."""
    ranges = ShadowIndex(pool, source=source, target=target).ranges(per_range=per_range)
    log.info("%d id ranges of about %d chunks", len(ranges), per_range)
    return [[lo, hi] for lo, hi in ranges]


def _still_building(pool: ConnectionPool, target: str) -> None:
    version = IndexRegistry(pool).get(target)
    if version is None or version.status != "building":
        raise FailedPrecondition(
            f"embedding version {target} is {version.status if version else 'unknown'}, not building: "
            "this re-embedding was superseded"
        )


def _embed_chunks(shadow: ShadowIndex, embed: Embedder, chunks: list[SourceChunk]) -> int:
    return shadow.write([c.id for c in chunks], _vectors(embed, [c.text for c in chunks]))


def embed_range(
    pool: ConnectionPool,
    embed: Embedder,
    *,
    source: str,
    target: str,
    lo: int,
    hi: int,
    batch: int = EMBED_BATCH,
) -> dict[str, float]:
    """Write the shadow rows of the source chunks with ids in ``[lo, hi]``."""
    _still_building(pool, target)
    shadow = ShadowIndex(pool, source=source, target=target)
    began = time.monotonic()
    written, after = 0, 0
    while chunks := shadow.pending(lo=lo, hi=hi, after=after, limit=batch):
        written += _embed_chunks(shadow, embed, chunks)
        after = chunks[-1].id
    seconds = time.monotonic() - began
    log.info(
        "chunks %d..%d: %d embedded into %s in %.1fs (%.1f chunks/s)",
        lo,
        hi,
        written,
        target,
        seconds,
        written / seconds if seconds else 0.0,
    )
    return {"chunks": written, "seconds": seconds}


def query_sentence(text: str, *, max_chars: int = 300) -> str:
    """The query that should find ``text``: its longest sentence (at most ``max_chars``)."""
    sentences = [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= 3]
    return (max(sentences, key=len) if sentences else text.strip())[:max_chars]


@dataclass
class GateResult:
    passed: bool
    reason: str
    quality: dict[str, Any] = field(default_factory=dict)


def quality_gate(
    pool: ConnectionPool,
    embed: Embedder,
    *,
    source: str,
    target: str,
    samples: int = 50,
    threshold: float = 0.8,
    k: int = 10,
    labelled: Sequence[dict[str, str]] = (),
    held_back: HeldBackLabels | None = None,
) -> GateResult:
    """Recall@k of the shadow index: self-retrieval on ``samples`` chunks (searched across all
    tenants, so that a small tenant cannot make any embedding look good), and on ``labelled``
    queries (``{"tenant", "query", "document_id"}``: a hit when a top-k chunk is that document's).
    Passes when every measured recall is at least ``threshold`` and, given ``held_back`` (a
    fine-tuned embedder's labels: :mod:`rag.ingestion.reembed_labels`), when the shadow index's
    hybrid nDCG@10 on those queries is at least what the serving index had."""
    shadow = ShadowIndex(pool, source=source, target=target)
    search = SearchRepository(pool)
    began = time.monotonic()
    quality: dict[str, Any] = {"threshold": threshold, "k": k, "chunks": shadow.count(target)}
    recalls: dict[str, float] = {}

    sample = shadow.sample(samples)
    if sample:
        # Across tenants: within one tenant of at most k chunks, any embedding would score 1.0.
        if quality["chunks"] <= k:
            log.warning(
                "only %d chunks: self-retrieval at k=%d cannot tell a good embedder", quality["chunks"], k
            )
        vectors = _vectors(embed, [query_sentence(c.text) for c in sample])
        hits = sum(chunk.id in shadow.nearest(v, k=k) for chunk, v in zip(sample, vectors, strict=True))
        recalls["self_retrieval"] = hits / len(sample)
        quality["self_retrieval_sample"] = len(sample)
    if labelled:
        vectors = _vectors(embed, [q["query"] for q in labelled])
        hits = 0
        for query, vector in zip(labelled, vectors, strict=True):
            found = search.dense(
                tenant=query["tenant"], version=target, vector=vector, k=k, filters=Filters()
            )
            documents = set(shadow.documents_of([i for i, _ in found]).values())
            hits += query["document_id"] in documents
        recalls["labelled"] = hits / len(labelled)
        quality["labelled_queries"] = len(labelled)
    quality.update({f"{name}_recall_at_{k}": round(r, 4) for name, r in recalls.items()})
    worse = ""
    if held_back is not None:
        ndcg, measured = held_back_ndcg(pool, embed, held_back, source=source, target=target)
        quality.update(
            {
                "heldback_tenant": held_back.tenant,
                "heldback_queries": measured,
                "heldback_ndcg_at_10": round(ndcg, 4),
                "heldback_baseline_ndcg_at_10": round(held_back.baseline_ndcg_at_10, 4),
            }
        )
        if measured and ndcg < held_back.baseline_ndcg_at_10:
            worse = (
                f"held-back hybrid nDCG@10 {ndcg:.4f} < {held_back.baseline_ndcg_at_10:.4f} of the serving"
                f" index on {measured} labelled queries of tenant {held_back.tenant}"
            )
    quality["gate_seconds"] = round(time.monotonic() - began, 3)
    below = {name: r for name, r in recalls.items() if r < threshold}
    if worse and not below:
        return GateResult(False, f"quality gate failed: {worse}", quality)
    if below:
        reason = (
            "quality gate failed: "
            + "; ".join(
                f"{name.replace('_', '-')} recall@{k} {r:.3f} < threshold {threshold:.3f}"
                + (
                    f" on {len(sample)} sampled chunks"
                    if name == "self_retrieval"
                    else f" on {len(labelled)} queries"
                )
                for name, r in below.items()
            )
            + (f"; {worse}" if worse else "")
        )
        return GateResult(False, reason, quality)
    if not recalls:
        return GateResult(True, "no chunks to evaluate: an empty index passes", quality)
    summary = ", ".join(f"{name} recall@{k} {r:.3f}" for name, r in recalls.items())
    summary += f" >= {threshold:.3f}"
    if "heldback_ndcg_at_10" in quality:
        summary += (
            f"; held-back hybrid nDCG@10 {quality['heldback_ndcg_at_10']:.4f}"
            f" >= {quality['heldback_baseline_ndcg_at_10']:.4f}"
        )
    return GateResult(True, f"quality gate passed: {summary}", quality)


def reject(pool: ConnectionPool, *, source: str, target: str, reason: str, quality: dict[str, Any]) -> int:
    """Mark ``target`` failed with ``reason`` and delete its shadow rows; returns how many."""
    IndexRegistry(pool).mark_failed(target, reason, quality)
    deleted = ShadowIndex(pool, source=source, target=target).delete_version(target)
    log.warning("%s: %s; %d shadow chunks deleted, %s keeps serving", target, reason, deleted, source)
    return deleted


def cut_over(
    pool: ConnectionPool,
    embed: Embedder,
    *,
    source: str,
    target: str,
    quality: dict[str, Any],
    rounds: int = 5,
) -> int:
    """Activate ``target`` and retire ``source`` in one transaction, first embedding the chunks
    ingested since the ranges were planned; returns how many of those were caught up."""
    shadow = ShadowIndex(pool, source=source, target=target)
    caught_up = 0
    for _ in range(rounds):
        if shadow.cut_over(quality) == 0:
            log.info("cut over: %s is active, %s retired (%d chunks caught up)", target, source, caught_up)
            return caught_up
        while chunks := shadow.missing(limit=EMBED_BATCH):
            caught_up += _embed_chunks(shadow, embed, chunks)
    raise FailedPrecondition(
        f"chunks of {source} kept arriving faster than they could be re-embedded into {target} "
        f"({rounds} rounds): retry when ingestion is quieter"
    )


def retire(pool: ConnectionPool, *, source: str, target: str) -> dict[str, Any]:
    """After the cutover: delete the retired version's chunks, send documents indexed with it
    since back to the sweeper, and refresh the BM25 statistics."""
    shadow = ShadowIndex(pool, source=source, target=target)
    deleted = shadow.delete_version(source)
    documents = DocumentRepository(pool)
    requeued = [str(i) for i in documents.requeue_retired_versions()]
    documents.refresh_lexical_statistics()
    log.info("%s retired: %d chunks deleted, %d documents requeued", source, deleted, len(requeued))
    return {"deleted": deleted, "requeued": requeued, "serving": target, "chunks": shadow.count(target)}
