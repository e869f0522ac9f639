"""Every DAG file imports cleanly and carries what operators rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def bag(airflow_db: None):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(bag) -> None:  # type: ignore[no-untyped-def]
    assert bag.import_errors == {}
    files = {p.stem for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_")}
    assert set(bag.dag_ids) == files  # one DAG per file, id = file stem


def test_every_dag_has_tags_owner_retries_doc_and_typed_params(bag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in bag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 80, dag_id
        assert dag.catchup is False, dag_id
        assert dag.start_date is not None and dag.start_date.tzinfo is not None, dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", (dag_id, task.task_id)
            assert task.retries >= 1, (dag_id, task.task_id)
            assert task.retry_exponential_backoff, (dag_id, task.task_id)
        for name, param in dag.params.items():
            schema = param.schema if hasattr(param, "schema") else dag.params.get_param(name).schema
            assert "type" in schema, (dag_id, name)
