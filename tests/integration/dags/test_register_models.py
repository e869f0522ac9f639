"""``register_models`` through ``dag.test()``: a version lands in MLflow with its tags."""

from __future__ import annotations

import pytest

from tests.fixtures.airflow import load_dag

pytestmark = pytest.mark.integration


def test_register_the_packaged_embedder_without_promoting(dag_env: dict[str, str]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(dag_env["MLFLOW_TRACKING_URI"])
    before = {v.version for v in client.search_model_versions("name = 'rag-embedder'")}
    run = load_dag("register_models").test(run_conf={"kind": "embedder", "path": "", "alias": "candidate"})
    assert str(run.state) == "success"
    after = {v.version: v for v in client.search_model_versions("name = 'rag-embedder'")}
    (new,) = set(after) - before
    version = after[new]
    assert version.tags["kind"] == "embedder" and version.tags["dimension"] == "384"
    assert client.get_model_version_by_alias("rag-embedder", "candidate").version == new
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"register": "success", "announce": "skipped"}


def test_bad_kind_is_refused(dag_env: dict[str, str]) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        load_dag("register_models").test(run_conf={"kind": "classifier"})
