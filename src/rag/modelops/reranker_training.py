"""The ``train_reranker`` DAG's work: labels in, a judged and registered reranker out.

1. **Split.** The tenant's labelled queries are split by :func:`rag.training.splits.held_back`;
   the held-back ones are never trained on.
2. **Mine.** Every labelled query is searched with the product's hybrid search
   (:mod:`rag.training.candidates`), to the deeper of the hard-negative depth and the rerank
   depth: the training pairs come from the train side, the judging from the held-back side.
3. **Train.** A sentence-transformers CrossEncoder from the base model (the packaged MiniLM, the
   champion, or a registered version), within the time budget (:mod:`rag.training.cross_encoder`).
4. **Judge.** On the held-back queries: plain hybrid, hybrid reranked by the new model, and, when
   a reranker serves, hybrid reranked by that champion, each at the serving rerank depth
   (:mod:`rag.training.evaluation`).
5. **Record.** An MLflow run holds the parameters, the metrics and the training log; the model
   is registered as a new version of ``rag-reranker`` linked to that run, its held-back metrics
   in its tags.

Promotion is a separate step (:func:`decide`): the new version becomes the champion only when
its held-back nDCG@10 beats the better of plain hybrid and the serving champion by the margin.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from rag.modelops.label_training import (
    BASE_PACKAGED,
    TAG_GATE,
    TAG_RUN,
    TAG_TENANT,
    Decision,
    Journal,
    LabelTraining,
    RunLog,
    TrainedModel,
    split_and_mine,
)
from rag.modelops.packaging import ModelKind
from rag.training.candidates import CandidateSearch, Labelled, pairs
from rag.training.cross_encoder import train_cross_encoder
from rag.training.evaluation import NDCG, Comparison, PairScorer, compare

log = logging.getLogger(__name__)

__all__ = ["BASE_PACKAGED", "TAG_GATE", "TAG_RUN", "TAG_TENANT", "RerankerTraining", "decide", "train"]

# Version tags the gate and operators read.
TAG_HELD_BACK_NDCG = "heldback_ndcg_at_10"
TAG_HYBRID_NDCG = "heldback_hybrid_ndcg_at_10"


@dataclass(frozen=True)
class RerankerTraining(LabelTraining):
    """The DAG's typed Params, checked once."""

    POSITIVE: ClassVar[tuple[str, ...]] = (*LabelTraining.POSITIVE, "rerank_depth")

    rerank_depth: int = 30  # the DAG passes the serving RERANK_DEPTH


def train(
    job: RerankerTraining,
    queries: Sequence[Labelled],
    *,
    search: CandidateSearch,
    runs: RunLog,
    register: Callable[..., Any],
    base: Path,
    champion: PairScorer | None,
    device: str = "cpu",
    work_dir: Path | None = None,
) -> TrainedModel:
    """Steps 1-5 of the module docstring; ``register(kind, path, run_id=, tags=, description=)``
    is :meth:`rag.modelops.lifecycle.ModelLifecycle.register`."""
    journal = Journal()
    say = journal.say
    mined = split_and_mine(
        job, queries, search, depth=max(job.hard_negative_depth, job.rerank_depth), journal=journal
    )
    train_lists, held_lists = mined.train, mined.held
    examples = pairs(
        train_lists, negatives=job.negatives_per_query, negative_depth=job.hard_negative_depth, seed=job.seed
    )
    params = asdict(job) | {"pairs": len(examples), "device": device}
    run_id = runs.start_run(
        f"train_reranker {job.tenant}",
        params=params,
        tags={"kind": ModelKind.RERANKER.value, TAG_TENANT: job.tenant},
    )
    failed = True
    try:
        with tempfile.TemporaryDirectory(prefix="rag-reranker-", dir=work_dir) as tmp:
            out = Path(tmp) / "model"
            report = train_cross_encoder(
                base, examples, out, job.training_params(), device=device, progress=say
            )
            from rag.models.reranking import Reranker

            scorer = Reranker(out, device=device, batch_size=64).score_pairs
            result = compare(held_lists, scorer, depth=job.rerank_depth)
            metrics = result.as_metrics("heldback_") | {
                "train_steps": float(report.steps),
                "train_seconds": report.seconds,
                "train_pairs": float(len(examples)),
                "stopped_by_budget": float(report.stopped_by_budget),
            }
            if report.final_loss is not None:
                metrics["train_loss"] = report.final_loss
            if champion is not None:
                serving: Comparison = compare(held_lists, champion, depth=job.rerank_depth)
                metrics["heldback_champion_ndcg_at_10"] = serving.reranked[NDCG]
            say(
                f"held back ({result.queries} queries): hybrid nDCG@10 {result.hybrid[NDCG]:.4f},"
                f" reranked {result.reranked[NDCG]:.4f}"
                + (f", champion {metrics['heldback_champion_ndcg_at_10']:.4f}" if champion else "")
            )
            journal.record(runs, run_id, Path(tmp), metrics, mined.split)
            info = register(
                ModelKind.RERANKER,
                out,
                run_id=run_id,
                description=f"trained on tenant {job.tenant}'s labels by train_reranker (run {run_id})",
                tags={
                    TAG_TENANT: job.tenant,
                    TAG_RUN: run_id,
                    TAG_HELD_BACK_NDCG: f"{result.reranked[NDCG]:.6f}",
                    TAG_HYBRID_NDCG: f"{result.hybrid[NDCG]:.6f}",
                },
            )
        failed = False
    finally:
        runs.end_run(run_id, failed=failed)
    say(f"registered {info.name} version {info.version}")
    return TrainedModel(str(info.version), run_id, metrics)


def decide(metrics: Mapping[str, float], margin: float) -> Decision:
    """Promote only when the new model's held-back nDCG@10 beats the better of plain hybrid and
    the serving champion (when one serves) by ``margin``."""
    new = metrics["heldback_reranked_ndcg_at_10"]
    rivals = {"plain hybrid": metrics["heldback_hybrid_ndcg_at_10"]}
    if "heldback_champion_ndcg_at_10" in metrics:
        rivals["the serving champion"] = metrics["heldback_champion_ndcg_at_10"]
    name, best = max(rivals.items(), key=lambda item: item[1])
    if new >= best + margin:
        return Decision(
            True, f"held-back nDCG@10 {new:.4f} beats {name} ({best:.4f}) by {new - best:+.4f} >= {margin}"
        )
    return Decision(
        False,
        f"held-back nDCG@10 {new:.4f} does not beat {name} ({best:.4f})"
        f" by the margin {margin} ({new - best:+.4f})",
    )
