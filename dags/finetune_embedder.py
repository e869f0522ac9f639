"""Fine-tune the embedder on a tenant's relevance labels; gate; promote; re-embed."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, task
from rag_dag_defaults import Retries, label_training_params, rag_dag

log = logging.getLogger(__name__)
EMBEDDER = Asset("rag://models/embedder")  # its event starts reembed_index

DOC = """
### Fine-tune the embedder on relevance labels

Labels come from the `FeedbackService.GradeResult` RPC and `rag labels import`.

1. **train**: the tenant's labelled queries are split; a share (*held_back_fraction*, fixed by
   *seed* and each query's key) is never trained on. Every labelled query is searched with the
   product's hybrid search; the train side gives (query, relevant chunk, hard negative)
   triplets, the negatives drawn from the top *hard_negative_depth* chunks that are not
   relevant. The embedder is fine-tuned from *base_model* (`packaged` MiniLM, `champion`, or a
   version number of `rag-embedder`) with MultipleNegativesRankingLoss, within
   *time_budget_minutes*. It is judged on the held-back queries: the first *judge_depth* hybrid
   candidates ordered by the new embedder against the serving one, nDCG@10. The run (params,
   metrics, log, split) and a new `rag-embedder` version go to MLflow.
2. **promote**: only when the new embedder beats the serving one by *promotion_margin*; then
   Triton serves it, the index is marked stale and the Asset `rag://models/embedder` starts
   `reembed_index`, whose gate also requires the re-embedded index's hybrid nDCG@10 on the
   held-back queries to be at least the serving index's. A gate that fails there keeps the old
   index and serves the old embedder again. A version that does not beat the serving one is
   registered but not promoted (the run stays green: that is an answer, not a failure).
"""


@rag_dag(
    "finetune_embedder",
    description="Fine-tune the embedder on a tenant's relevance labels, judge on held-back labels, promote",
    doc_md=DOC,
    schedule=None,
    tags=["models", "mlflow", "training"],
    retries=Retries(1, timedelta(minutes=1), up_to=timedelta(minutes=5), timeout=timedelta(hours=2)),
    params=label_training_params(
        "rag-embedder", negatives=(1, 16, "Hard negatives per positive"), promotion_margin=0.005
    )
    | {
        "batch_size": Param(
            32,
            type="integer",
            minimum=2,
            maximum=512,
            title="Batch size",
            description="Every other passage of a batch is a negative: larger batches, harder training.",
        ),
        "learning_rate": Param(3e-5, type="number", exclusiveMinimum=0, maximum=0.01, title="Learning rate"),
        "judge_depth": Param(
            20,
            type="integer",
            minimum=1,
            maximum=100,
            title="Judged candidates",
            description="Hybrid candidates each embedder orders on the held-back queries.",
        ),
    },
)
def finetune_embedder() -> None:
    @task
    def train(params: dict[str, Any] | None = None, ti: Any = None) -> dict[str, Any]:
        """Mine, fine-tune, judge on held-back labels, register in MLflow."""
        from rag_hooks import RagHook

        assert params is not None
        with RagHook() as hook:
            return hook.train_embedder(params, username=f"airflow:{ti.dag_id}" if ti else "airflow")

    @task(outlets=[EMBEDDER])
    def promote(trained: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Promote when the new embedder beats the serving one; the Asset event starts reembed_index."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException
        from rag_hooks import RagHook

        assert params is not None
        with RagHook() as hook:
            result = hook.promote_embedder(trained, margin=float(params["promotion_margin"]))
        if not result["promoted"]:  # skipped tasks emit no Asset event: nothing to re-embed
            log.info("not promoted: %s", result["reason"])
            raise AirflowSkipException(f"version {result['version']} not promoted: {result['reason']}")
        get_current_context()["outlet_events"][EMBEDDER].extra = {
            "registered_version": result["version"],
            "model_version": result["model_version"],
            "labels": result["labels"],
        }
        return result

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    trained: Any = train()
    promote(trained)


finetune_embedder()
