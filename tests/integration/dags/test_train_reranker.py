"""``train_reranker`` through ``dag.test()``, the whole loop on a tiny corpus: labels in, hard
negatives mined with the product's hybrid search, a CrossEncoder trained from the packaged
MiniLM, an MLflow run and version with held-back metrics, the gate, promotion into Triton, and
Search reranking with the new champion. Then a gate that fails leaves that champion serving.

The corpus makes hybrid search wrong on purpose: for each topic, three "Noise:" passages repeat
the query's words and the one relevant passage, "Answer: ...", shares only the topic. A
cross-encoder learns that from the train queries in a dozen steps, so the held-back queries
tell a trained model from an untrained one (what is judged here is the loop, not quality).
"""

from __future__ import annotations

import uuid

import pytest
from psycopg_pool import ConnectionPool

from bench.indexing import Ingestion, ingest_texts
from bench.target import client_for
from rag.adapters.postgres.documents import DocumentRepository
from rag.adapters.postgres.labels import LabelRepository
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from rag.settings import Settings
from tests.fixtures.airflow import load_dag
from tests.fixtures.grpc_server import EventLoopThread, serving_application

pytestmark = pytest.mark.integration

TOPICS = [
    "volcano",
    "glacier",
    "comet",
    "coral",
    "tundra",
    "monsoon",
    "aurora",
    "canyon",
    "geyser",
    "lagoon",
    "meteor",
    "prairie",
    "reef",
    "savanna",
    "dune",
    "fjord",
]
REGISTERED = "rag-reranker"


def _query(topic: str) -> str:
    return f"what shapes the {topic} landscape"


def _corpus() -> list[tuple[str, str]]:
    items = []
    for topic in TOPICS:
        items.append((f"loop://{topic}/answer.txt", f"Answer: erosion and time slowly form every {topic}."))
        items += [
            (
                f"loop://{topic}/noise-{n}.txt",
                f"Noise {n}: the {topic} landscape shapes {topic} landscape photos.",
            )
            for n in range(3)
        ]
    return items


def label_topics(pool: ConnectionPool, intake: Intake, pipeline: Pipeline, prefix: str) -> str:
    """A fresh tenant holding the corpus, each topic's query labelled with its answer."""
    tenant = f"{prefix}{uuid.uuid4().hex[:8]}"
    run = ingest_texts(
        _corpus(), tenant=tenant, ingestion=Ingestion(pool, DocumentRepository(pool), intake, pipeline)
    )
    assert (run.indexed, run.quarantined) == (len(TOPICS) * 4, 0)
    with pool.connection() as conn:
        rows = conn.execute("SELECT source_uri, id FROM documents WHERE tenant = %s", (tenant,)).fetchall()
    ids: dict[str, uuid.UUID] = {str(uri): doc for uri, doc in rows}
    LabelRepository(pool).import_labels(
        tenant,
        {topic: _query(topic) for topic in TOPICS},
        [(topic, ids[f"loop://{topic}/answer.txt"], 1) for topic in TOPICS],
        labelled_by="test",
    )
    return tenant


@pytest.fixture(scope="module")
def labelled_tenant(pool: ConnectionPool, intake: Intake, pipeline: Pipeline) -> str:
    return label_topics(pool, intake, pipeline, "loop")


def _conf(tenant: str, margin: float) -> dict[str, object]:
    return {
        "tenant": tenant,
        "max_steps": 12,
        "negatives_per_query": 3,
        "hard_negative_depth": 4,
        "held_back_fraction": 0.25,
        "promotion_margin": margin,
        "seed": 3,
    }


def _top(settings: Settings, address: str, tenant: str, rerank: bool | None) -> list[str]:
    with client_for(address, settings, tenant) as client:
        hits = client.search(_query("glacier"), top_k=4, rerank=rerank).results
    return [hit.text.split(":")[0] for hit in hits]


def test_labels_to_a_promoted_reranker_then_a_failing_gate_keeps_it(
    dag_env: dict[str, str], settings: Settings, grpc_loop: EventLoopThread, labelled_tenant: str
) -> None:
    from mlflow import MlflowClient

    mlflow = MlflowClient(dag_env["MLFLOW_TRACKING_URI"])
    before = {v.version for v in mlflow.search_model_versions(f"name = '{REGISTERED}'")}

    # Margin 0: a tie with the champion promotes too. The stack may already serve a reranker
    # that ranks this corpus perfectly (an earlier run of this test on a reused stack).
    run = load_dag("train_reranker").test(run_conf=_conf(labelled_tenant, 0.0))
    assert str(run.state) == "success"
    (new,) = {v.version for v in mlflow.search_model_versions(f"name = '{REGISTERED}'")} - before
    version = mlflow.get_model_version(REGISTERED, new)
    assert version.run_id is not None
    metrics = mlflow.get_run(version.run_id).data.metrics
    assert metrics["train_steps"] == 12
    assert metrics["heldback_reranked_ndcg_at_10"] >= metrics["heldback_hybrid_ndcg_at_10"] + 0.05
    assert version.tags["trained_for_tenant"] == labelled_tenant
    assert "beats" in version.tags["promotion_gate"]
    assert mlflow.get_model_version_by_alias(REGISTERED, "champion").version == new

    with serving_application(grpc_loop, settings) as port:
        address = f"127.0.0.1:{port}"
        assert _top(settings, address, labelled_tenant, rerank=False)[0].startswith("Noise")
        assert _top(settings, address, labelled_tenant, rerank=True)[0] == "Answer"

    # A margin no model can reach: registered and judged, not promoted; the champion serves on.
    failing = load_dag("train_reranker").test(run_conf=_conf(labelled_tenant, 1.0))
    assert str(failing.state) == "success"
    latest = max(int(v.version) for v in mlflow.search_model_versions(f"name = '{REGISTERED}'"))
    assert latest > int(new)
    assert "does not beat" in mlflow.get_model_version(REGISTERED, str(latest)).tags["promotion_gate"]
    assert mlflow.get_model_version_by_alias(REGISTERED, "champion").version == new
    with serving_application(grpc_loop, settings) as port:
        assert _top(settings, f"127.0.0.1:{port}", labelled_tenant, rerank=True)[0] == "Answer"
