"""The trainings assembled inside an Airflow task: the product's own services over the task's
connections (what ``RagHook`` delegates to).

- :func:`hybrid_candidates` is the :class:`rag.training.candidates.CandidateSearch` of a tenant:
  :class:`rag.retrieval.service.RetrievalService` in hybrid mode without rerank, run on the
  Triton client's event loop (the one loop of the task's :class:`BlockingTriton`), so the
  candidates are the very chunks Search returns, fused the same way. The searches are recorded
  in the query log under the training's username, like any other caller's.
- :func:`served_reranker` is the champion as it serves: Triton's ``reranker`` model, as a
  :data:`rag.training.evaluation.PairScorer`, or None when no reranker is loaded.
- :func:`train_reranker` and :func:`promote_reranker` are the two tasks of the
  ``train_reranker`` DAG (:mod:`rag.modelops.reranker_training` says what they do);
  :func:`train_embedder` and :func:`promote_embedder` those of ``finetune_embedder``
  (:mod:`rag.modelops.embedder_training`).
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from rag.core.errors import FailedPrecondition
from rag.core.search import MAX_QUERY_CHARS, MAX_TOP_K, SearchMode, SearchRequest
from rag.training.candidates import Candidate, CandidateSearch
from rag.training.evaluation import PairScorer

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from rag.adapters.mlflow_registry import ModelRegistry
    from rag.adapters.triton import BlockingTriton
    from rag.modelops.packaging import ModelKind
    from rag.settings import Settings

log = logging.getLogger(__name__)


def hybrid_candidates(
    triton: BlockingTriton, pool: ConnectionPool, settings: Settings, *, tenant: str, username: str
) -> CandidateSearch:
    from rag.adapters.cache import QUERY_CACHE_SUBDIR, TieredCache
    from rag.retrieval.service import Caller, RetrievalService

    async def build() -> RetrievalService:  # the cache's Redis client belongs to the loop
        cache = TieredCache(
            redis_url=settings.REDIS_URL, disk_dir=Path(settings.HF_CACHE_DIR) / QUERY_CACHE_SUBDIR
        )
        return RetrievalService(
            triton=triton.client, cache=cache, pool=pool, rerank_depth=settings.RERANK_DEPTH
        )

    retrieval = triton.call(build())
    caller = Caller(tenant, username)

    def search(query: str, depth: int) -> Sequence[Candidate]:
        request = SearchRequest.validated(
            query=query[:MAX_QUERY_CHARS], top_k=min(depth, MAX_TOP_K), mode=SearchMode.HYBRID, rerank=False
        )
        result = triton.call(retrieval.search(caller, request, timeout=settings.TRITON_TIMEOUT_S))
        return [Candidate(h.chunk_id, h.document_id, h.text) for h in result.hits]

    return search


def served_reranker(triton: BlockingTriton) -> PairScorer | None:
    from rag.adapters.triton import RERANKER

    if not triton.model_ready(RERANKER):
        return None

    def score(pairs: Sequence[tuple[str, str]]) -> NDArray[np.float32]:
        parts = []
        for query, group in itertools.groupby(pairs, key=lambda pair: pair[0]):
            parts.append(triton.rerank(query, [passage for _, passage in group]))
        return np.concatenate(parts) if parts else np.empty((0,), dtype=np.float32)

    return score


def base_weights(
    base_model: str, registry: ModelRegistry, target: Path, kind: ModelKind | None = None
) -> Path:
    """The weights a training starts from: the packaged MiniLM, or a registered version of
    ``kind`` (the reranker unless told; ``champion`` or a number) downloaded into ``target``."""
    from rag.modelops.packaging import CHAMPION, ModelKind, weights_in
    from rag.modelops.reranker_training import BASE_PACKAGED
    from rag.models.artifacts import default_embedder_path

    if base_model == BASE_PACKAGED:
        return default_embedder_path()
    name = (kind or ModelKind.RERANKER).registered_name
    version = registry.alias(name, CHAMPION) if base_model == CHAMPION else base_model
    if version is None:
        raise FailedPrecondition(f"{name} has no champion to start from: use base_model packaged")
    return weights_in(registry.download(name, version, target))


def train_reranker(
    params: Mapping[str, Any],
    *,
    pool: ConnectionPool,
    triton: BlockingTriton,
    settings: Settings,
    username: str,
) -> dict[str, Any]:
    """The DAG's ``train`` task: returns the new version, its run and its metrics."""
    from rag.adapters.postgres.labels import LabelRepository
    from rag.modelops.lifecycle import build_lifecycle
    from rag.modelops.reranker_training import RerankerTraining, train
    from rag.models.artifacts import resolve_device

    job = RerankerTraining.from_params({**params, "rerank_depth": settings.RERANK_DEPTH})
    lifecycle = build_lifecycle(settings, pool, triton)
    queries = LabelRepository(pool).labelled_queries(job.tenant)
    with tempfile.TemporaryDirectory(prefix="rag-train-") as tmp:
        trained = train(
            job,
            queries,
            search=hybrid_candidates(triton, pool, settings, tenant=job.tenant, username=username),
            runs=lifecycle.registry,
            register=lifecycle.register,
            base=base_weights(job.base_model, lifecycle.registry, Path(tmp) / "base"),
            champion=served_reranker(triton),
            device=resolve_device("cuda" if settings.ENABLE_GPU else "cpu"),
            work_dir=Path(tmp),
        )
    return trained.as_xcom()


def promote_reranker(
    trained: Mapping[str, Any],
    *,
    margin: float,
    pool: ConnectionPool,
    triton: BlockingTriton,
    settings: Settings,
) -> dict[str, Any]:
    """The DAG's ``promote`` task: the gate's decision, and the promotion when it passes."""
    from rag.modelops.lifecycle import build_lifecycle
    from rag.modelops.packaging import ModelKind
    from rag.modelops.reranker_training import TAG_GATE, decide

    lifecycle = build_lifecycle(settings, pool, triton)
    decision = decide(trained["metrics"], margin)
    name, version = ModelKind.RERANKER.registered_name, str(trained["version"])
    lifecycle.registry.set_version_tag(name, version, TAG_GATE, decision.reason)
    log.info("%s version %s: %s", name, version, decision.reason)
    if decision.promote:
        deployment = lifecycle.promote(ModelKind.RERANKER, version)
        log.info("%s version %s serves as Triton version %s", name, version, deployment.triton_version)
    return {"version": version, "promoted": decision.promote, "reason": decision.reason}


def train_embedder(
    params: Mapping[str, Any],
    *,
    pool: ConnectionPool,
    triton: BlockingTriton,
    settings: Settings,
    username: str,
) -> dict[str, Any]:
    """The ``finetune_embedder`` DAG's ``train`` task: the new version, its run and metrics."""
    from rag.adapters.postgres.labels import LabelRepository
    from rag.modelops.embedder_training import EmbedderTraining, train
    from rag.modelops.lifecycle import build_lifecycle
    from rag.modelops.packaging import ModelKind
    from rag.models.artifacts import resolve_device

    job = EmbedderTraining.from_params(params)
    lifecycle = build_lifecycle(settings, pool, triton)
    queries = LabelRepository(pool).labelled_queries(job.tenant)
    with tempfile.TemporaryDirectory(prefix="rag-train-") as tmp:
        trained = train(
            job,
            queries,
            search=hybrid_candidates(triton, pool, settings, tenant=job.tenant, username=username),
            runs=lifecycle.registry,
            register=lifecycle.register,
            base=base_weights(job.base_model, lifecycle.registry, Path(tmp) / "base", ModelKind.EMBEDDER),
            serving=lambda texts: triton.embed(texts),
            device=resolve_device("cuda" if settings.ENABLE_GPU else "cpu"),
            work_dir=Path(tmp),
        )
    return trained.as_xcom()


def promote_embedder(
    trained: Mapping[str, Any],
    *,
    margin: float,
    pool: ConnectionPool,
    triton: BlockingTriton,
    settings: Settings,
) -> dict[str, Any]:
    """The DAG's ``promote`` task: the gate's decision and, when it passes, the promotion (which
    records the index as stale) and what ``reembed_index`` needs to judge the re-embedded index:
    the new index version and the tenant's held-back split with its hybrid nDCG@10 today."""
    from rag.modelops import embedder_training as training
    from rag.modelops.lifecycle import build_lifecycle
    from rag.modelops.packaging import TAG_MODEL_VERSION, ModelKind

    lifecycle = build_lifecycle(settings, pool, triton)
    decision = training.decide(trained["metrics"], margin)
    name, version = ModelKind.EMBEDDER.registered_name, str(trained["version"])
    lifecycle.registry.set_version_tag(name, version, training.TAG_GATE, decision.reason)
    log.info("%s version %s: %s", name, version, decision.reason)
    out: dict[str, Any] = {"version": version, "promoted": decision.promote, "reason": decision.reason}
    if decision.promote:
        deployment = lifecycle.promote(ModelKind.EMBEDDER, version)
        info = lifecycle.registry.version(name, version)
        log.info("%s version %s serves as Triton version %s", name, version, deployment.triton_version)
        out |= {
            "model_version": info.tag(TAG_MODEL_VERSION),
            "labels": {
                "tenant": info.tag(training.TAG_TENANT),
                "held_back_fraction": float(info.tag(training.TAG_HELD_BACK_FRACTION)),
                "seed": int(info.tag(training.TAG_SEED)),
                "baseline_ndcg_at_10": float(trained["metrics"][training.TAG_SERVING_HYBRID_NDCG]),
            },
        }
    return out


def restore_embedder(
    model_version: str, *, pool: ConnectionPool, triton: BlockingTriton, settings: Settings
) -> str:
    """After ``reembed_index``'s gate rejected ``model_version``: when that embedder is the one
    Triton serves (a promotion put it there), serve again the version that served before, so
    that queries are embedded by the model the serving index was built with. Returns what was
    done, for the task's message."""
    from rag.modelops.lifecycle import build_lifecycle
    from rag.modelops.packaging import ModelKind

    lifecycle = build_lifecycle(settings, pool, triton)
    current = lifecycle.records.serving(ModelKind.EMBEDDER.triton_model)
    if current is None or current.details.get("model_version") != model_version:
        return f"the embedder serving is not {model_version}: nothing to roll back"
    try:
        restored = lifecycle.rollback(ModelKind.EMBEDDER)
    except FailedPrecondition as exc:
        log.error("%s still serves and cannot be rolled back: %s", model_version, exc)
        return f"{model_version} still serves and cannot be rolled back ({exc}): promote the earlier embedder"
    return (
        f"{ModelKind.EMBEDDER.registered_name} version {restored.mlflow_version} serves again"
        f" (Triton version {restored.triton_version})"
    )
