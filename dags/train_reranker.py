"""Train a cross-encoder reranker on a tenant's relevance labels; gate; promote."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import task
from rag_dag_defaults import Retries, label_training_params, rag_dag

log = logging.getLogger(__name__)

DOC = """
### Train a reranker on relevance labels

Labels come from the `FeedbackService.GradeResult` RPC and `rag labels import`.

1. **train**: the tenant's labelled queries are split; a share (*held_back_fraction*, fixed by
   *seed* and each query's key) is never trained on. Every labelled query is searched with the
   product's hybrid search; the train side gives (query, chunk) pairs: chunks of documents
   labelled relevant, and *negatives_per_query* hard negatives drawn from the top
   *hard_negative_depth* chunks that are not. A sentence-transformers CrossEncoder is trained
   from *base_model* (`packaged`: the MiniLM shipped with RAG System, `champion`, or a version
   number of `rag-reranker`) for *epochs* (or *max_steps*), within *time_budget_minutes*. It is
   judged on the held-back queries against plain hybrid and the serving reranker, at the
   serving rerank depth, and registered in MLflow (`rag-reranker`) with its run: parameters,
   metrics (nDCG@10, MRR@10), training log and split.
2. **promote**: the version becomes the champion, and Triton serves it, only when its held-back
   nDCG@10 beats the better of plain hybrid and the serving champion by *promotion_margin*.
   Otherwise the champion keeps serving and the task says why (the run stays green: a model
   that is not better is an answer, not a failure).
"""


@rag_dag(
    "train_reranker",
    description="Train a cross-encoder on a tenant's relevance labels, judge it on held-back labels, promote",
    doc_md=DOC,
    schedule=None,
    tags=["models", "mlflow", "training"],
    retries=Retries(1, timedelta(minutes=1), up_to=timedelta(minutes=5), timeout=timedelta(hours=2)),
    params=label_training_params(
        "rag-reranker", negatives=(4, 64, "Negatives per query"), promotion_margin=0.01
    ),
)
def train_reranker() -> None:
    @task
    def train(params: dict[str, Any] | None = None, ti: Any = None) -> dict[str, Any]:
        """Mine, train, judge on held-back labels, register in MLflow."""
        from rag_hooks import RagHook

        assert params is not None
        with RagHook() as hook:
            return hook.train_reranker(params, username=f"airflow:{ti.dag_id}" if ti else "airflow")

    @task
    def promote(trained: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Promote the new version when it beats hybrid and the champion by the margin."""
        from rag_hooks import RagHook

        assert params is not None
        with RagHook() as hook:
            return hook.promote_reranker(trained, margin=float(params["promotion_margin"]))

    # Any: what a task call returns here is an XComArg, which Airflow resolves to the value
    # the task returned before handing it on (Airflow's typing cannot say so).
    trained: Any = train()
    promote(trained)


train_reranker()
