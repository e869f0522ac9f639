"""What every RAG System DAG shares: owner, start date, retries with exponential backoff.

:func:`rag_dag` is Airflow's ``@dag`` with these defaults filled in, so that a DAG file says only
what is its own: id, description, schedule, tags, how its tasks retry, and its Params.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag

OWNER = "rag-platform"
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)

# Documents per mapped ingestion task. Each task pays ~4 s to start (Airflow's task runner,
# imports, the tokenizer, connections): with 8 documents a task, a 300-document run spent three
# quarters of its time starting tasks (3.1 documents/s vs 11 for the pipeline alone, bench.ingestion).
# The pipeline keeps memory bounded whatever the batch (it holds ~128 chunks at a time), and a
# retried task skips the documents it already indexed.
INGEST_BATCH_DOCUMENTS = 128


def in_batches(ids: list[str], size: int) -> list[list[str]]:
    """``ids`` in batches of ``size`` (one mapped task each)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def default_args(
    *, retries: int, retry_delay: timedelta, max_retry_delay: timedelta, execution_timeout: timedelta
) -> dict[str, Any]:
    """Task defaults: retries back off exponentially from ``retry_delay`` up to ``max_retry_delay``."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": max_retry_delay,
        "execution_timeout": execution_timeout,
    }


@dataclass(frozen=True)
class Retries:
    """How a DAG's tasks retry: ``times`` retries, the first after ``delay``, each later one
    waiting exponentially longer up to ``up_to``; ``timeout`` bounds every try."""

    times: int
    delay: timedelta
    up_to: timedelta
    timeout: timedelta


def chunking_params() -> dict[str, Param]:
    """The chunk size and overlap Params of the DAGs that ingest documents."""
    return {
        "chunk_tokens": Param(200, type="integer", minimum=16, maximum=8192, title="Chunk size (tokens)"),
        "overlap_tokens": Param(32, type="integer", minimum=0, maximum=4096, title="Chunk overlap (tokens)"),
    }


def label_training_params(
    registered: str, *, negatives: tuple[int, int, str], promotion_margin: float
) -> dict[str, Param]:
    """The Params both trainings on relevance labels take (train_reranker, finetune_embedder):
    ``registered`` names the MLflow model a base version comes from; ``negatives`` is (default,
    maximum, title) of the hard negatives drawn per query or positive."""
    from rag.core.auth import TENANT_PATTERN

    default, most, title = negatives
    return {
        "tenant": Param("default", type="string", pattern=f"^{TENANT_PATTERN}$", title="Tenant"),
        "base_model": Param(
            "packaged",
            type="string",
            pattern="^(packaged|champion|[1-9][0-9]{0,8})$",
            title="Base model",
            description=f"packaged (MiniLM), champion, or a version number of {registered}.",
        ),
        "epochs": Param(1, type="integer", minimum=1, maximum=20, title="Epochs"),
        "max_steps": Param(
            0,
            type="integer",
            minimum=0,
            maximum=1_000_000,
            title="Max steps",
            description="0: as the epochs take.",
        ),
        "negatives_per_query": Param(default, type="integer", minimum=1, maximum=most, title=title),
        "hard_negative_depth": Param(
            30,
            type="integer",
            minimum=1,
            maximum=100,
            title="Hard-negative depth",
            description="Negatives are drawn from this many top hybrid chunks.",
        ),
        "held_back_fraction": Param(
            0.2, type="number", exclusiveMinimum=0, exclusiveMaximum=1, title="Held-back fraction"
        ),
        "promotion_margin": Param(
            promotion_margin, type="number", minimum=0, maximum=1, title="Promotion margin (nDCG@10)"
        ),
        "seed": Param(13, type="integer", minimum=0, maximum=2**31 - 1, title="Seed"),
        "time_budget_minutes": Param(
            20,
            type="number",
            minimum=1,
            maximum=600,
            title="Time budget (minutes)",
            description="Training stops here even if steps remain.",
        ),
    }


def rag_dag(
    dag_id: str,
    *,
    description: str,
    doc_md: str,
    schedule: Any,
    tags: list[str],
    retries: Retries,
    params: dict[str, Param],
    max_active_runs: int = 1,
    native_params: bool = True,
    **more: Any,
) -> Callable[[Callable[..., None]], Callable[..., Any]]:
    """``@dag`` for a RAG System DAG: tagged ``rag``, starting at :data:`START_DATE` without
    catch-up, one run at a time unless ``max_active_runs`` says otherwise, tasks retrying as
    ``retries`` says; ``native_params`` renders templated Params as Python objects, not
    strings. ``more`` goes to ``@dag`` as it is (``dagrun_timeout``, ...)."""
    if native_params:
        more["render_template_as_native_obj"] = True
    decorator: Callable[[Callable[..., None]], Callable[..., Any]] = dag(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=max_active_runs,
        tags=["rag", *tags],
        default_args=default_args(
            retries=retries.times,
            retry_delay=retries.delay,
            max_retry_delay=retries.up_to,
            execution_timeout=retries.timeout,
        ),
        params=params,
        **more,
    )
    return decorator
