"""The learned-relevance loop in one command: ``python -m bench.quality --train-on SPLIT``.

1. The corpus is ingested as for ``bench.quality`` (its own tenant) and SPLIT's qrels are
   imported as that tenant's relevance labels (``rag labels import`` does the same).
2. Both trainings run through the DAGs' own task code (:mod:`rag.modelops.training_assembly`):
   ``finetune_embedder`` (train, gate, promote), then ``reembed_index``'s steps (plan, embed,
   the gate with the held-back labels, cut over, retire), then ``train_reranker`` (train, gate,
   promote). Each training keeps the same held-back share of the labelled queries out.
3. Every mode is evaluated through gRPC Search: on ``--split`` when it is another split, else on
   the held-back queries only (the ones no training saw), before and after the trainings.

On SciFact only the train split ships here: ``--train-on train`` then judges on the held-back
fifth. Run other folds with ``--seed``; each seed holds back another fifth.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from bench import beir
from bench.quality import MODES, ModeResult, evaluate_modes, reranker_loaded
from bench.target import Target
from rag.settings import Settings
from rag.training.splits import held_back


@dataclass(frozen=True)
class LoopParams:
    held_back_fraction: float = 0.2
    seed: int = 13
    embedder_epochs: int = 1
    reranker_max_steps: int = 0
    time_budget_minutes: float = 20.0
    skip_reranker: bool = False
    skip_embedder: bool = False


def distinct_texts(dataset: beir.BeirDataset) -> beir.BeirDataset:
    """The dataset with one query per text: the label store keeps one id per query text, and a
    text both trained on and judged would leak. SciFact's train split has such pairs (85 and 86);
    the first id keeps the text and the grades of both."""
    first: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for qid, text in dataset.queries.items():
        keep = first.setdefault(text, qid)
        merged = qrels.setdefault(keep, {})
        for doc, grade in dataset.qrels.get(qid, {}).items():
            merged[doc] = max(grade, merged.get(doc, grade))
    return replace(dataset, queries={q: t for t, q in first.items()}, qrels=qrels)


def import_labels(settings: Settings, tenant: str, dataset: beir.BeirDataset, doc_of: dict[str, str]) -> int:
    """SPLIT's qrels as the tenant's labels; returns how many labels were stored or kept."""
    from rag.adapters.postgres.labels import LabelRepository
    from rag.adapters.postgres.pool import create_pool

    uuid_of = {beir_id: uuid.UUID(u) for u, beir_id in doc_of.items()}
    qrels = [
        (qid, uuid_of[doc], grade)
        for qid, grades in dataset.qrels.items()
        for doc, grade in grades.items()
        if doc in uuid_of and qid in dataset.queries
    ]
    with create_pool(settings, min_size=1, name="bench") as pool:
        counts = LabelRepository(pool).import_labels(
            tenant, dataset.queries, qrels, labelled_by="bench.quality"
        )
    print(f"labels: {counts}", flush=True)
    return len(qrels)


def judged_queries(
    train: beir.BeirDataset, evaluation: beir.BeirDataset, loop: LoopParams
) -> beir.BeirDataset:
    """The evaluation split, or, when it is the training split, its held-back queries only."""
    if evaluation.split != train.split:
        return evaluation
    judged = [q for q, g in train.qrels.items() if any(v > 0 for v in g.values()) and q in train.queries]
    _, held = held_back(judged, loop.held_back_fraction, seed=loop.seed)
    keep = set(held)
    return replace(
        train,
        split=f"{train.split} (held back: {len(keep)} queries, seed {loop.seed})",
        queries={q: t for q, t in train.queries.items() if q in keep},
        qrels={q: g for q, g in train.qrels.items() if q in keep},
    )


def _reembed(hook: Any, promoted: dict[str, Any]) -> dict[str, Any]:
    """``reembed_index``'s tasks in order, in process (one range)."""
    from rag.ingestion import reembed
    from rag.ingestion.reembed_labels import HeldBackLabels

    plan = reembed.plan_reembed(hook.pool, hook.triton.embed, model_version=promoted["model_version"])
    if plan is None:
        return {"skipped": "nothing to re-embed"}
    for lo, hi in reembed.split(hook.pool, source=plan.source, target=plan.target, per_range=1_000_000):
        reembed.embed_range(
            hook.pool, hook.triton.embed, source=plan.source, target=plan.target, lo=lo, hi=hi
        )
    gate = reembed.quality_gate(
        hook.pool,
        hook.triton.embed,
        source=plan.source,
        target=plan.target,
        held_back=HeldBackLabels.of(promoted["labels"]),
    )
    print(f"reembed_index gate: {gate.reason} {gate.quality}", flush=True)
    if not gate.passed:
        reembed.reject(
            hook.pool, source=plan.source, target=plan.target, reason=gate.reason, quality=gate.quality
        )
        from rag.modelops.training_assembly import restore_embedder

        restored = restore_embedder(plan.target, pool=hook.pool, triton=hook.triton, settings=hook.settings)
        return {"passed": False, "reason": gate.reason, "restored": restored}
    reembed.cut_over(
        hook.pool, hook.triton.embed, source=plan.source, target=plan.target, quality=gate.quality
    )
    reembed.retire(hook.pool, source=plan.source, target=plan.target)
    return {"passed": True, "reason": gate.reason, "quality": gate.quality}


@dataclass
class _Connections:
    pool: Any
    triton: Any
    settings: Settings


def train_both(settings: Settings, tenant: str, loop: LoopParams) -> dict[str, Any]:
    """Both trainings through the DAG task code; returns what each step reported."""
    from rag.adapters.postgres.pool import create_pool
    from rag.adapters.triton import BlockingTriton, TritonOptions
    from rag.modelops import training_assembly as tasks

    common = {
        "tenant": tenant,
        "held_back_fraction": loop.held_back_fraction,
        "seed": loop.seed,
        "time_budget_minutes": loop.time_budget_minutes,
        "promotion_margin": 0.005,
    }
    out: dict[str, Any] = {}
    with (
        create_pool(settings, min_size=1, name="bench") as pool,
        BlockingTriton(TritonOptions(settings.TRITON_GRPC_URL, timeout_s=300.0)) as triton,
    ):
        hook = _Connections(pool, triton, settings)
        if not loop.skip_embedder:
            began = time.perf_counter()
            trained = tasks.train_embedder(
                common | {"epochs": loop.embedder_epochs},
                pool=pool,
                triton=triton,
                settings=settings,
                username="bench.quality",
            )
            promoted = tasks.promote_embedder(
                trained, margin=0.005, pool=pool, triton=triton, settings=settings
            )
            out["embedder"] = {
                "trained": trained,
                "promoted": promoted,
                "seconds": time.perf_counter() - began,
            }
            print(f"finetune_embedder: {promoted['reason']}", flush=True)
            if promoted["promoted"]:
                out["reembed"] = _reembed(hook, promoted)
        if not loop.skip_reranker:
            began = time.perf_counter()
            trained = tasks.train_reranker(
                common | {"max_steps": loop.reranker_max_steps},
                pool=pool,
                triton=triton,
                settings=settings,
                username="bench.quality",
            )
            promoted = tasks.promote_reranker(
                trained, margin=0.005, pool=pool, triton=triton, settings=settings
            )
            out["reranker"] = {
                "trained": trained,
                "promoted": promoted,
                "seconds": time.perf_counter() - began,
            }
            print(f"train_reranker: {promoted['reason']}", flush=True)
    return out


def run_loop(
    target: Target,
    tenant: str,
    train: beir.BeirDataset,
    evaluation: beir.BeirDataset,
    doc_of: dict[str, str],
    loop: LoopParams,
) -> tuple[list[ModeResult], list[ModeResult], dict[str, Any], beir.BeirDataset]:
    """(modes before, modes after, what the trainings reported, the judged queries)."""
    from bench.quality import forget_cached_results

    train = distinct_texts(train)
    import_labels(target.settings, tenant, train, doc_of)
    judged = judged_queries(train, evaluation, loop)
    # With --skip-reranker the reranked mode is left out: it would judge whatever reranker the
    # stack happens to serve, at ~2 s a query on CPU.
    modes = tuple(m for m in MODES if not (loop.skip_reranker and m[2]))
    before = evaluate_modes(
        target.grpc_address,
        target.settings,
        tenant,
        judged,
        doc_of,
        rerank_available=reranker_loaded(target.settings),
        modes=modes,
    )
    trainings = train_both(target.settings, tenant, loop)
    from rag.adapters.postgres.pool import create_pool

    with create_pool(target.settings, min_size=1, name="bench") as pool:
        forget_cached_results(pool, tenant)
    after = evaluate_modes(
        target.grpc_address,
        target.settings,
        tenant,
        judged,
        doc_of,
        rerank_available=reranker_loaded(target.settings),
        modes=modes,
    )
    return before, after, trainings, judged
