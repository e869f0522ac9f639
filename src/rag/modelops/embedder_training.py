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

import json
import logging
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import InvalidInput
from rag.modelops.packaging import CHAMPION, ModelKind
from rag.modelops.reranker_training import BASE_PACKAGED, Decision, RunLog, TrainedModel
from rag.training.bi_encoder import train_bi_encoder
from rag.training.budget import TrainingParams
from rag.training.candidates import CandidateSearch, Labelled, mine, triplets
from rag.training.evaluation import NDCG, Encoder, compare, similarity_scorer
from rag.training.splits import held_back

log = logging.getLogger(__name__)

_BASE = re.compile(rf"^({BASE_PACKAGED}|{CHAMPION}|[1-9][0-9]{{0,8}})$")
# Version tags: the gate's inputs, and what reembed_index reads to judge the re-embedded index.
TAG_TENANT = "trained_for_tenant"
TAG_RUN = "training_run_id"
TAG_GATE = "promotion_gate"
TAG_HELD_BACK_FRACTION = "held_back_fraction"
TAG_SEED = "split_seed"
TAG_SERVING_HYBRID_NDCG = "heldback_hybrid_ndcg_at_10"
NEW = "heldback_embedder_ndcg_at_10"
SERVING = "heldback_serving_embedder_ndcg_at_10"


@dataclass(frozen=True)
class EmbedderTraining:
    """The DAG's typed Params, checked once."""

    tenant: str
    base_model: str = BASE_PACKAGED  # packaged, champion, or a registered version number
    epochs: int = 1
    max_steps: int = 0
    batch_size: int = 32
    learning_rate: float = 3e-5
    negatives_per_query: int = 1
    hard_negative_depth: int = 30
    judge_depth: int = 20
    held_back_fraction: float = 0.2
    promotion_margin: float = 0.005
    seed: int = 13
    max_length: int = 256
    time_budget_minutes: float = 20.0

    def __post_init__(self) -> None:
        if not _BASE.match(self.base_model):
            raise InvalidInput(
                f"must be {BASE_PACKAGED!r}, {CHAMPION!r} or a version number, got {self.base_model!r}",
                field="base_model",
            )
        for name in ("epochs", "batch_size", "negatives_per_query", "hard_negative_depth", "judge_depth"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"must be at least 1, got {getattr(self, name)}", field=name)
        if self.batch_size < 2:
            raise InvalidInput("must be at least 2 (in-batch negatives)", field="batch_size")
        if self.max_steps < 0 or self.time_budget_minutes < 0 or self.promotion_margin < 0:
            raise InvalidInput("max_steps, time_budget_minutes and promotion_margin must not be negative")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EmbedderTraining:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in params.items() if k in fields})

    @property
    def training_params(self) -> TrainingParams:
        return TrainingParams(
            epochs=self.epochs,
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            max_length=self.max_length,
            seed=self.seed,
            time_budget_s=self.time_budget_minutes * 60,
            log_every=5,
        )


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
    lines: list[str] = []

    def say(message: str) -> None:
        log.info("%s", message)
        lines.append(message)

    judged = [q for q in queries if any(g > 0 for g in q.grades.values())]
    train_keys, held_keys = held_back([q.key for q in judged], job.held_back_fraction, seed=job.seed)
    say(
        f"{len(judged)} labelled queries of tenant {job.tenant}:"
        f" {len(train_keys)} train, {len(held_keys)} held back"
    )
    depth = max(job.hard_negative_depth, job.judge_depth)
    lists = mine(judged, search, depth=depth, progress=lambda n, total: say(f"mined {n}/{total} queries"))
    held = set(held_keys)
    train_lists = [r for r in lists if r.key not in held]
    held_lists = [r for r in lists if r.key in held]
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
            report = train_bi_encoder(base, examples, out, job.training_params, device=device, progress=say)
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
            runs.log_metrics(run_id, metrics)
            log_file = Path(tmp) / "training.log"
            log_file.write_text("\n".join(lines) + "\n")
            runs.log_artifact(run_id, log_file)
            split_file = Path(tmp) / "split.json"
            split_file.write_text(json.dumps({"train": train_keys, "held_back": held_keys}))
            runs.log_artifact(run_id, split_file)
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
