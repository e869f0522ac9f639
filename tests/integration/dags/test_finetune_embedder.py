"""``finetune_embedder`` then ``reembed_index`` through ``dag.test()``, the whole loop on a tiny
corpus: labels in, triplets mined with the product's hybrid search, MiniLM fine-tuned, an MLflow
run and version with held-back metrics, the gate, promotion into Triton, the index re-embedded
and judged on the held-back labels before the cutover, and dense search finding what the labels
say. Then a re-embedding whose labelled gate fails keeps the index and serves the embedder that
served before. The corpus is train_reranker's (test_train_reranker): for each topic three
"Noise:" passages repeat the query's words, and the relevant "Answer:" shares only the topic.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.search import SearchRepository
from rag.adapters.triton import BlockingTriton
from rag.core.search import Filters
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from rag.modelops.lifecycle import ModelLifecycle
from rag.modelops.packaging import TAG_MODEL_VERSION, ModelKind
from tests.fixtures.airflow import load_dag
from tests.integration.dags.test_train_reranker import TOPICS, _query, label_topics

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures.models"]  # the lifecycle fixture

EMBEDDER = ModelKind.EMBEDDER
REGISTERED = "rag-embedder"


@pytest.fixture(scope="module")
def labelled_tenant(pool: ConnectionPool, intake: Intake, pipeline: Pipeline) -> str:
    return label_topics(pool, intake, pipeline, "emb")


@pytest.fixture
def minilm_serves_after(
    lifecycle: ModelLifecycle, index_version: str, db: psycopg.Connection
) -> Iterator[str]:
    """MiniLM serves first (so a failed gate has an embedder to return to) and again after,
    with the session's index re-embedded under its own label: the other tests find the stack
    as they expect it."""
    minilm = lifecycle.register(EMBEDDER)
    lifecycle.promote(EMBEDDER, minilm.version)
    yield minilm.version
    lifecycle.promote(EMBEDDER, minilm.version)
    active = db.execute("SELECT model_version FROM embedding_indexes WHERE status = 'active'").fetchone()
    db.commit()
    if active is not None and active[0] != index_version:
        assert _reembed(index_version) == "success"


def _reembed(version: str, **conf: object) -> str:
    run = load_dag("reembed_index").test(run_conf={"model_version": version, "sample_size": 20, **conf})
    return str(run.state)


def _answers_first(pool: ConnectionPool, triton: BlockingTriton, tenant: str, version: str) -> int:
    """Topics whose nearest chunk (dense search) is the relevant answer."""
    search = SearchRepository(pool)
    found = 0
    for vector in triton.embed([_query(topic) for topic in TOPICS]):
        ((chunk, _),) = search.dense(tenant=tenant, version=version, vector=vector, k=1, filters=Filters())
        with pool.connection() as conn:
            row = conn.execute("SELECT text FROM chunks WHERE id = %s", (chunk,)).fetchone()
        found += row is not None and str(row[0]).startswith("Answer")
    return found


def _active(db: psycopg.Connection) -> str:
    row = db.execute("SELECT model_version FROM embedding_indexes WHERE status = 'active'").fetchone()
    db.commit()
    assert row is not None
    return str(row[0])


def test_labels_to_a_fine_tuned_embedder_and_a_re_embedded_index_then_a_failing_gate_restores(
    dag_env: dict[str, str],
    minilm_serves_after: str,
    labelled_tenant: str,
    lifecycle: ModelLifecycle,
    pool: ConnectionPool,
    blocking_triton: BlockingTriton,
    index_version: str,
    db: psycopg.Connection,
) -> None:
    from mlflow import MlflowClient

    mlflow = MlflowClient(dag_env["MLFLOW_TRACKING_URI"])
    before = {v.version for v in mlflow.search_model_versions(f"name = '{REGISTERED}'")}
    untrained = _answers_first(pool, blocking_triton, labelled_tenant, index_version)

    conf = {
        "tenant": labelled_tenant,
        "max_steps": 8,
        "batch_size": 8,
        "learning_rate": 1e-4,
        "hard_negative_depth": 4,
        "judge_depth": 4,
        "held_back_fraction": 0.25,
        "promotion_margin": 0.0,
        "seed": 3,
    }
    run = load_dag("finetune_embedder").test(run_conf=conf)
    assert str(run.state) == "success"
    (new,) = {v.version for v in mlflow.search_model_versions(f"name = '{REGISTERED}'")} - before
    version = mlflow.get_model_version(REGISTERED, new)
    assert version.run_id is not None
    metrics = mlflow.get_run(version.run_id).data.metrics
    assert metrics["train_steps"] == 8
    assert metrics["heldback_embedder_ndcg_at_10"] > metrics["heldback_serving_embedder_ndcg_at_10"]
    assert "beats the serving embedder" in version.tags["promotion_gate"]
    serving = lifecycle.records.serving("embedder")
    assert serving is not None and serving.mlflow_version == new  # Triton serves the new embedder

    # reembed_index, as the promotion's Asset event starts it (dag.test runs no schedule).
    fine_tuned = version.tags[TAG_MODEL_VERSION]
    labels = {
        "tenant": labelled_tenant,
        "held_back_fraction": float(version.tags["held_back_fraction"]),
        "seed": int(version.tags["split_seed"]),
        "baseline_ndcg_at_10": metrics["heldback_hybrid_ndcg_at_10"],
    }
    assert _reembed(fine_tuned, held_back_labels=labels) == "success"
    assert _active(db) == fine_tuned
    quality = db.execute(
        "SELECT quality FROM embedding_indexes WHERE model_version = %s", (fine_tuned,)
    ).fetchone()
    db.commit()
    assert quality is not None and quality[0]["heldback_queries"] >= 1
    assert quality[0]["heldback_ndcg_at_10"] >= labels["baseline_ndcg_at_10"]
    assert _answers_first(pool, blocking_triton, labelled_tenant, fine_tuned) > untrained

    # MiniLM promoted again, and a labelled gate it cannot pass (a baseline above 1): the
    # re-embedding fails saying why, the fine-tuned index stays active and the fine-tuned
    # embedder, the one that index was built with, serves again.
    lifecycle.promote(EMBEDDER, minilm_serves_after)
    impossible = labels | {"baseline_ndcg_at_10": 1.01}
    assert _reembed(index_version, held_back_labels=impossible) == "failed"
    assert _active(db) == fine_tuned
    reason = db.execute(
        "SELECT reason FROM embedding_indexes WHERE model_version = %s", (index_version,)
    ).fetchone()
    db.commit()
    assert reason is not None and "held-back hybrid nDCG@10" in str(reason[0])
    serving = lifecycle.records.serving("embedder")
    assert serving is not None and serving.mlflow_version == new
