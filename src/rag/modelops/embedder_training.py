"""The ``finetune_embedder`` DAG's work: labels in, a judged and registered embedder out.

The same steps as the reranker's (:mod:`rag.modelops.reranker_training`), with a bi-encoder:

1. **Split** the tenant's labelled queries (:func:`rag.training.splits.held_back`).
2. **Mine** every labelled query with the product's hybrid search.
3. **Train** from the base (the packaged MiniLM, the champion embedder, or a registered
   version) with MultipleNegativesRankingLoss on (query, relevant chunk, hard negative)
   triplets of the train side (:mod:`rag.training.bi_encoder`), within the time budget.
4. **Judge** on the held-back queries. The new embedder cannot be judged on the whole index
   before the index is re-embedded with it (that is ``reembed_index``'s gate, the final one), so
   here each embedder orders the first ``judge_depth`` hybrid candidates by cosine similarity:
   the new one against the serving one (Triton's ``embedder``), on the same candidates.
5. **Record** an MLflow run (parameters, metrics, training log, split) and a new version of
   ``rag-embedder`` linked to it; its tags carry the held-back split and the hybrid nDCG@10 of
   the serving index, which ``reembed_index`` must at least match before it cuts over.

:func:`decide` promotes only when the new embedder beats the serving one by the margin.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from rag.core.errors import InvalidInput
from rag.modelops.label_training import (
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
from rag.training.bi_encoder import train_bi_encoder
from rag.training.candidates import CandidateSearch, Labelled, triplets
from rag.training.evaluation import NDCG, Encoder, compare, similarity_scorer

log = logging.getLogger(__name__)

__all__ = ["TAG_GATE", "TAG_RUN", "TAG_TENANT", "EmbedderTraining", "decide", "train"]

# Version tags: what reembed_index reads to judge the re-embedded index.
TAG_HELD_BACK_FRACTION = "held_back_fraction"
TAG_SEED = "split_seed"
TAG_SERVING_HYBRID_NDCG = "heldback_hybrid_ndcg_at_10"
NEW = "heldback_embedder_ndcg_at_10"
SERVING = "heldback_serving_embedder_ndcg_at_10"


@dataclass(frozen=True)
class EmbedderTraining(LabelTraining):
    """The DAG's typed Params, checked once."""

    POSITIVE: ClassVar[tuple[str, ...]] = (*LabelTraining.POSITIVE, "judge_depth")

    batch_size: int = 32
    learning_rate: float = 3e-5
    negatives_per_query: int = 1
    promotion_margin: float = 0.005
    judge_depth: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 2:
            raise InvalidInput("must be at least 2 (in-batch negatives)", field="batch_size")


def train(
    job: EmbedderTraining,
    queries: Sequence[Labelled],
    *,
    search: CandidateSearch,
    runs: RunLog,
    register: Callable[..., Any],
    base: Path,
    serving: Encoder,
    device: str = "cpu",
    work_dir: Path | None = None,
) -> TrainedModel:
    """Steps 1-5 of the module docstring; ``serving`` embeds with the embedder Triton serves."""
    journal = Journal()
    say = journal.say
    mined = split_and_mine(
        job, queries, search, depth=max(job.hard_negative_depth, job.judge_depth), journal=journal
    )
    train_lists, held_lists = mined.train, mined.held
    examples = triplets(
        train_lists, negatives=job.negatives_per_query, negative_depth=job.hard_negative_depth, seed=job.seed
    )
    run_id = runs.start_run(
        f"finetune_embedder {job.tenant}",
        params=asdict(job) | {"triplets": len(examples), "device": device},
        tags={"kind": ModelKind.EMBEDDER.value, TAG_TENANT: job.tenant},
    )
    failed = True
    try:
        with tempfile.TemporaryDirectory(prefix="rag-embedder-", dir=work_dir) as tmp:
            out = Path(tmp) / "model"
            report = train_bi_encoder(
                base, examples, out, job.training_params(log_every=5), device=device, progress=say
            )
            from rag.models.embedding import Embedder

            new = Embedder(out, device=device)
            mine_ = compare(held_lists, similarity_scorer(new.encode), depth=job.judge_depth)
            theirs = compare(held_lists, similarity_scorer(serving), depth=job.judge_depth)
            metrics = {
                "heldback_queries": float(mine_.queries),
                TAG_SERVING_HYBRID_NDCG: mine_.hybrid[NDCG],
                NEW: mine_.reranked[NDCG],
                SERVING: theirs.reranked[NDCG],
                "heldback_embedder_mrr_at_10": mine_.reranked["mrr@10"],
                "train_steps": float(report.steps),
                "train_seconds": report.seconds,
                "train_triplets": float(len(examples)),
                "stopped_by_budget": float(report.stopped_by_budget),
            }
            if report.final_loss is not None:
                metrics["train_loss"] = report.final_loss
            say(
                f"held back ({mine_.queries} queries), the first {job.judge_depth} hybrid candidates"
                f" ordered by each embedder: new nDCG@10 {metrics[NEW]:.4f},"
                f" serving {metrics[SERVING]:.4f} (hybrid order {metrics[TAG_SERVING_HYBRID_NDCG]:.4f})"
            )
            journal.record(runs, run_id, Path(tmp), metrics, mined.split)
            info = register(
                ModelKind.EMBEDDER,
                out,
                name=f"minilm-{job.tenant}-{run_id[:8]}",
                run_id=run_id,
                description=f"fine-tuned on tenant {job.tenant}'s labels by finetune_embedder (run {run_id})",
                tags={
                    TAG_TENANT: job.tenant,
                    TAG_RUN: run_id,
                    TAG_HELD_BACK_FRACTION: str(job.held_back_fraction),
                    TAG_SEED: str(job.seed),
                    NEW: f"{metrics[NEW]:.6f}",
                    SERVING: f"{metrics[SERVING]:.6f}",
                },
            )
        failed = False
    finally:
        runs.end_run(run_id, failed=failed)
    say(f"registered {info.name} version {info.version}")
    return TrainedModel(str(info.version), run_id, metrics)


def decide(metrics: Mapping[str, float], margin: float) -> Decision:
    """Promote only when the new embedder orders the held-back candidates better than the
    serving one by ``margin`` (nDCG@10)."""
    new, serving = metrics[NEW], metrics[SERVING]
    if new >= serving + margin:
        return Decision(
            True,
            f"held-back nDCG@10 {new:.4f} beats the serving embedder ({serving:.4f})"
            f" by {new - serving:+.4f} >= {margin}",
        )
    return Decision(
        False,
        f"held-back nDCG@10 {new:.4f} does not beat the serving embedder ({serving:.4f})"
        f" by the margin {margin} ({new - serving:+.4f})",
    )
