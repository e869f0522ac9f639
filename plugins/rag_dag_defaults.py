"""What every RAG System DAG shares: owner, start date, retries with exponential backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

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
