"""Shared DAG defaults (plugins/rag_dag_defaults.py)."""

from __future__ import annotations

from datetime import timedelta

from rag_dag_defaults import INGEST_BATCH_DOCUMENTS, OWNER, default_args, in_batches


def test_batches_keep_every_id_once_in_order() -> None:
    ids = [str(n) for n in range(300)]
    batches = in_batches(ids, INGEST_BATCH_DOCUMENTS)
    assert [len(b) for b in batches] == [128, 128, 44]
    assert [i for b in batches for i in b] == ids
    assert in_batches([], 8) == []
    assert in_batches(["a", "b", "c"], 1) == [["a"], ["b"], ["c"]]


def test_default_args_back_off_exponentially() -> None:
    args = default_args(
        retries=3,
        retry_delay=timedelta(seconds=10),
        max_retry_delay=timedelta(minutes=5),
        execution_timeout=timedelta(hours=1),
    )
    assert args["owner"] == OWNER and args["retries"] == 3
    assert args["retry_exponential_backoff"] is True
    assert args["max_retry_delay"] == timedelta(minutes=5)
