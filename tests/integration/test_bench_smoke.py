"""The quality benchmark's harness end to end on a small real-text corpus (no timings).

The corpus (tests/fixtures/beir.py) is written as a BEIR folder, ingested through Intake and
Pipeline.process_many, and queried through a real gRPC server in every mode (hybrid + rerank
with a tiny cross-encoder trained by the tests and served by Triton: its quality is not judged). The regression
check: hybrid Recall@10 through the product is at least the Recall@10 of exact dense search
computed in this process with the same embedding model, less one question (HNSW and chunking
may move one borderline document; more than that is a retrieval regression).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from psycopg_pool import ConnectionPool

from bench import beir
from bench.indexing import Ingestion, ingest_texts
from bench.metrics import read_trec_run
from bench.quality import beir_ids, evaluate_modes, reranker_loaded, source_uri
from rag.adapters.postgres.documents import DocumentRepository
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from rag.settings import Settings
from rag.training.metrics import evaluate
from tests.fixtures.beir import write_beir
from tests.fixtures.grpc_server import EventLoopThread, serving_application

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.fixtures.models"]  # served_reranker


def exact_dense_run(dataset: beir.BeirDataset, k: int) -> dict[str, list[tuple[str, float]]]:
    """Exact cosine search over whole-document embeddings, in-process (the floor)."""
    from rag.models.embedding import Embedder

    embedder = Embedder()
    ids = list(dataset.corpus)
    docs = embedder.encode([dataset.document_text(d) for d in ids])
    queries = embedder.encode(list(dataset.queries.values()))
    scores = queries @ docs.T
    run = {}
    for row, qid in zip(scores, dataset.queries, strict=True):
        order = np.argsort(-row)[:k]
        run[qid] = [(ids[i], float(row[i])) for i in order]
    return run


def test_quality_harness_end_to_end(
    tmp_path: Path,
    grpc_loop: EventLoopThread,
    settings: Settings,
    pool: ConnectionPool,
    intake: Intake,
    pipeline: Pipeline,
    served_reranker: str,
) -> None:
    dataset = beir.load(write_beir(tmp_path / "health"))
    assert dataset.split == "test" and len(dataset.corpus) == 24 and len(dataset.queries) == 16
    tenant = f"b{uuid.uuid4().hex[:10]}"
    items = [(source_uri(dataset, d), dataset.document_text(d)) for d in dataset.corpus]
    run = ingest_texts(
        items, tenant=tenant, ingestion=Ingestion(pool, DocumentRepository(pool), intake, pipeline)
    )
    assert (run.indexed, run.quarantined) == (24, 0)
    doc_of = beir_ids(pool, tenant, dataset)
    assert sorted(doc_of.values()) == sorted(dataset.corpus)

    with serving_application(grpc_loop, settings) as port:
        results = evaluate_modes(
            f"127.0.0.1:{port}",
            settings,
            tenant,
            dataset,
            doc_of,
            rerank_available=reranker_loaded(settings),
            runs_dir=tmp_path / "runs",
            top_k=10,
            recall_k=10,
        )

    by_mode = {r.label: r for r in results}
    assert by_mode["hybrid+rerank"].skipped is None  # the tiny cross-encoder reranks through gRPC
    for label in ("dense", "fulltext", "hybrid", "hybrid+rerank"):
        metrics = by_mode[label].metrics
        assert metrics is not None and metrics["queries"] == 16
        for name in ("ndcg@10", "recall@10", "mrr@10"):
            assert 0.0 <= metrics[name] <= 1.0, (label, name, metrics[name])
        trec = read_trec_run(tmp_path / "runs" / f"health-{label}.trec")
        assert set(trec) == set(dataset.queries)
        assert all(doc in dataset.corpus for ranking in trec.values() for doc, _ in ranking)

    floor = evaluate(exact_dense_run(dataset, 10), dataset.qrels, recall_k=10)["recall@10"]
    hybrid = by_mode["hybrid"].metrics
    assert hybrid is not None
    assert hybrid["recall@10"] >= floor - 1 / len(dataset.queries), (hybrid, floor)
