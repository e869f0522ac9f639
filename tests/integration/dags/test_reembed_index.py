"""``reembed_index`` through ``dag.test()``: a passing gate cuts over, a failing one changes nothing.

The "new" embedder is the served MiniLM under a new version label (Triton embeds; the label is
what is new). The test ends by re-embedding back into the original label, so the session's
other tests find the index version they started with.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.search import SearchRepository
from rag.adapters.triton import BlockingTriton
from rag.core.search import Filters
from rag.settings import Settings
from tests.fixtures.airflow import load_dag

pytestmark = pytest.mark.integration


def _reembed(version: str, **conf: object) -> str:
    run = load_dag("reembed_index").test(run_conf={"model_version": version, "sample_size": 20, **conf})
    return str(run.state)


def _versions(db: psycopg.Connection) -> dict[str, tuple[str, str | None]]:
    rows = db.execute("SELECT model_version, status, reason FROM embedding_indexes").fetchall()
    db.commit()
    return {v: (s, r) for v, s, r in rows}


def _chunks(db: psycopg.Connection, tenant: str) -> dict[tuple[str, int], tuple[str, str]]:
    rows = db.execute(
        "SELECT document_id::text, ordinal, text, embedding_model_version FROM chunks WHERE tenant = %s",
        (tenant,),
    ).fetchall()
    db.commit()
    return {(d, o): (t, v) for d, o, t, v in rows}


def _search(pool: ConnectionPool, triton: BlockingTriton, tenant: str, version: str) -> dict[str, list[Any]]:
    search = SearchRepository(pool)
    query = "does sleep help memory and recall"
    vector = triton.embed([query])[0]
    dense = search.dense(tenant=tenant, version=version, vector=vector, k=3, filters=Filters())
    lexical = search.lexical(tenant=tenant, version=version, query=query, k=3, filters=Filters())
    with pool.connection() as conn:
        where = {
            i: (str(d), o)
            for i, d, o in conn.execute(
                "SELECT id, document_id, ordinal FROM chunks WHERE id = ANY(%s)",
                ([i for i, _ in dense + lexical],),
            ).fetchall()
        }
    return {"dense": [where[i] for i, _ in dense], "bm25": [where[i] for i, _ in lexical]}


@pytest.fixture
def original_label(index_version: str, settings: Settings) -> Iterator[str]:
    """If the test stops half-way, put the session's label back (the vectors are the same
    MiniLM's under any label), so that the other tests find the version they started with."""
    yield index_version
    with psycopg.connect(settings.DATABASE_URL) as conn:
        row = conn.execute("SELECT model_version FROM embedding_indexes WHERE status = 'active'").fetchone()
        if row is None or row[0] == index_version:
            return
        conn.execute(
            "DELETE FROM chunks WHERE embedding_model_version NOT IN (%s, %s)", (row[0], index_version)
        )
        conn.execute(
            "UPDATE chunks SET embedding_model_version = %s WHERE embedding_model_version = %s",
            (index_version, row[0]),
        )
        conn.execute("UPDATE embedding_indexes SET status = 'retired' WHERE status = 'active'")
        conn.execute(
            "UPDATE embedding_indexes SET status = 'active' WHERE model_version = %s", (index_version,)
        )


def test_reembed_passes_the_gate_and_cuts_over_then_a_failing_gate_changes_nothing(
    original_label: str,
    dag_env: dict[str, str],
    topics_tenant: tuple[str, dict[str, str]],
    index_version: str,
    db: psycopg.Connection,
    pool: ConnectionPool,
    blocking_triton: BlockingTriton,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant, _ = topics_tenant
    original = _versions(db)
    assert original[index_version][0] == "active"
    before = _chunks(db, tenant)
    served_before = _search(pool, blocking_triton, tenant, index_version)
    assert served_before["dense"] and served_before["bm25"]
    total = db.execute("SELECT count(*) FROM chunks").fetchone()
    db.commit()

    new = f"{index_version.split('@')[0]}@reembed-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    assert _reembed(new) == "success"
    print(f"re-embedded {total[0] if total else 0} chunks in {time.monotonic() - began:.1f}s (whole DAG run)")
    versions = _versions(db)
    assert versions[new][0] == "active" and versions[index_version][0] == "retired"
    after = _chunks(db, tenant)
    assert after.keys() == before.keys()
    assert all(text == before[key][0] and v == new for key, (text, v) in after.items())
    assert db.execute(
        "SELECT count(*) FROM chunks WHERE embedding_model_version = %s", (index_version,)
    ).fetchone() == (0,)
    quality = db.execute("SELECT quality FROM embedding_indexes WHERE model_version = %s", (new,)).fetchone()
    db.commit()
    assert quality is not None and quality[0]["self_retrieval_recall_at_10"] >= 0.8
    assert _search(pool, blocking_triton, tenant, new) == served_before  # same chunks, same order

    # A broken embedder (random vectors) fails the gate: the version is failed with the reason,
    # its shadow rows are gone, and the serving version never changed.
    broken = f"{index_version.split('@')[0]}@broken-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(7)

    def random_vectors(self: BlockingTriton, texts: Sequence[str], **_: object) -> np.ndarray[Any, Any]:
        vectors = rng.normal(size=(len(texts), 384)).astype(np.float32)
        normalized: np.ndarray[Any, Any] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return normalized

    with monkeypatch.context() as patched:
        patched.setattr(BlockingTriton, "embed", random_vectors)
        # 0.95: the session's index may hold only a few dozen chunks, where even random vectors
        # reach a recall@10 of 10/N by chance.
        assert _reembed(broken, recall_threshold=0.95) == "failed"
    versions = _versions(db)
    assert versions[new][0] == "active"
    status, reason = versions[broken]
    assert (
        status == "failed" and reason and reason.startswith("quality gate failed: self-retrieval recall@10")
    )
    assert db.execute(
        "SELECT count(*) FROM chunks WHERE embedding_model_version = %s", (broken,)
    ).fetchone() == (0,)
    db.commit()
    assert _search(pool, blocking_triton, tenant, new) == served_before

    # Back to the original label (a retired version is rebuilt like a new one).
    assert _reembed(index_version) == "success"
    versions = _versions(db)
    assert versions[index_version][0] == "active" and versions[new][0] == "retired"
    assert _search(pool, blocking_triton, tenant, index_version) == served_before
