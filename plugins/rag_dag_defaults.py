"""What every RAG System DAG shares: owner, start date, retries with exponential backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

OWNER = "rag-platform"
START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


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
