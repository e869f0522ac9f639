"""Shared DAG defaults (plugins/rag_dag_defaults.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Param, task
from rag_dag_defaults import (
    INGEST_BATCH_DOCUMENTS,
    OWNER,
    START_DATE,
    Retries,
    chunking_params,
    default_args,
    in_batches,
    rag_dag,
)


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


def _example_dag(**more: Any) -> Any:
    def example() -> None:
        @task
        def step() -> None:
            return None

        step()

    decorate = rag_dag(
        "example",
        description="An example",
        doc_md="Example documentation.",
        schedule=None,
        tags=["operations"],
        retries=Retries(4, timedelta(seconds=10), up_to=timedelta(minutes=2), timeout=timedelta(hours=1)),
        params={"size": Param(3, type="integer")},
        **more,
    )
    return decorate(example)()


def test_rag_dag_fills_in_the_shared_defaults() -> None:
    dag = _example_dag()

    assert dag.dag_id == "example" and dag.description == "An example"
    assert dag.tags == {"rag", "operations"}
    assert dag.start_date == START_DATE and dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.render_template_as_native_obj is True
    assert dag.params["size"] == 3
    [step] = dag.tasks
    assert step.owner == OWNER
    assert (step.retries, step.retry_delay, step.max_retry_delay) == (
        4,
        timedelta(seconds=10),
        timedelta(minutes=2),
    )
    assert step.retry_exponential_backoff and step.execution_timeout == timedelta(hours=1)


def test_rag_dag_passes_on_what_a_dag_sets_itself() -> None:
    dag = _example_dag(max_active_runs=4, native_params=False, dagrun_timeout=timedelta(minutes=60))

    assert dag.max_active_runs == 4
    assert dag.render_template_as_native_obj is False
    assert dag.dagrun_timeout == timedelta(minutes=60)


def test_chunking_params_are_fresh_for_each_dag() -> None:
    first, second = chunking_params(), chunking_params()

    assert set(first) == {"chunk_tokens", "overlap_tokens"}
    assert first["chunk_tokens"].value == 200 and first["overlap_tokens"].value == 32
    assert first["chunk_tokens"] is not second["chunk_tokens"]
