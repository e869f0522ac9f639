"""BM25 statistics are kept per tenant and embedding model version: another tenant's documents, or
another version's chunks, never change a tenant's scores (that would be a cross-tenant signal)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.documents import DocumentRepository
from rag.adapters.postgres.search import SearchRepository
from rag.core.search import Filters
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline

pytestmark = pytest.mark.integration

A_DOCUMENTS = {
    "lighthouse.txt": "Lighthouses\n\nA lighthouse keeper trimmed the lamp every night so that ships could "
    "see the rocks at the mouth of the harbour.",
    "tides.txt": "Tides\n\nThe moon pulls the sea into two bulges: the harbour sees two high tides a day, and "
    "heavy ships wait for them.",
    "storm.txt": "Storms at sea\n\nIn a storm, ships make for the nearest harbour; the lighthouse beam guides "
    "them past the rocks.",
}
# Tenant B writes about the same things, over and over: under statistics shared across tenants,
# every document frequency and the average length A scores with would change.
B_DOCUMENTS = {
    f"b{i}.txt": f"Harbour log {i}\n\n"
    + "ships harbour lighthouse rocks tides moon storm keeper lamp " * (i + 1)
    for i in range(6)
}
QUERIES = ["lighthouse keeper lamp", "ships in the harbour near rocks", "moon and tides", "storm beam"]


@pytest.fixture
def tenants(pool: ConnectionPool) -> Iterator[tuple[str, str]]:
    names = (f"la{uuid.uuid4().hex[:8]}", f"lb{uuid.uuid4().hex[:8]}")
    yield names
    DocumentRepository(pool).delete(_ids(pool, names))
    DocumentRepository(pool).refresh_lexical_statistics(tenants=names)


def _ids(pool: ConnectionPool, tenants: tuple[str, ...]) -> list[uuid.UUID]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT id FROM documents WHERE tenant = ANY(%s)", (list(tenants),)).fetchall()
    return [r[0] for r in rows]


def _ingest(intake: Intake, pipeline: Pipeline, tenant: str, documents: dict[str, str]) -> None:
    for name, text in documents.items():
        doc = intake.receive(text.encode(), tenant=tenant, source_uri=f"file:///isolation/{name}")
        assert pipeline.process(doc.document.id).status.value == "indexed"


def _scores(pool: ConnectionPool, tenant: str, version: str) -> dict[str, list[tuple[int, float]]]:
    search = SearchRepository(pool)
    return {
        q: search.lexical(tenant=tenant, version=version, query=q, k=10, filters=Filters()) for q in QUERIES
    }


def _same(scores: dict[str, list[tuple[int, float]]], before: dict[str, list[tuple[int, float]]]) -> bool:
    """The same chunks in the same order with the same scores (up to the last bit of a float sum,
    whose order follows the plan: other rows in the index may change it)."""
    return all(
        [i for i, _ in scores[q]] == [i for i, _ in hits]
        and [s for _, s in scores[q]] == pytest.approx([s for _, s in hits], rel=1e-12)
        for q, hits in before.items()
    )


def _generation(pool: ConnectionPool, tenant: str) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT generation FROM tenant_generations WHERE tenant = %s", (tenant,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_another_tenants_documents_and_another_versions_chunks_leave_scores_unchanged(
    tenants: tuple[str, str], intake: Intake, pipeline: Pipeline, pool: ConnectionPool, index_version: str
) -> None:
    a, b = tenants
    documents = DocumentRepository(pool)
    _ingest(intake, pipeline, a, A_DOCUMENTS)
    documents.refresh_lexical_statistics()
    before = _scores(pool, a, index_version)
    assert all(before.values()) and len(before["ships in the harbour near rocks"]) == 3
    generation = _generation(pool, a)

    _ingest(intake, pipeline, b, B_DOCUMENTS)
    documents.refresh_lexical_statistics()  # every tenant's
    assert all(_scores(pool, b, index_version).values())
    assert _same(_scores(pool, a, index_version), before)
    assert _generation(pool, a) == generation  # A's cached results stay valid

    # A re-embedding's shadow rows: A's chunks again under another version, with more terms.
    shadow = f"shadow-{a}"
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO chunks (document_id, tenant, ordinal, text, heading, page, char_start, char_end,"
            " token_count, embedding_model_version)"
            " SELECT document_id, tenant, ordinal, text || ' lighthouse harbour', heading, page, char_start,"
            " char_end, token_count, %s FROM chunks WHERE tenant = %s",
            (shadow, a),
        )
        conn.execute(
            "SELECT rag_index_chunk_terms(array_agg(id)) FROM chunks WHERE embedding_model_version = %s",
            (shadow,),
        )
    documents.refresh_lexical_statistics(tenants=[a])
    assert all(_scores(pool, a, shadow).values())
    assert _same(_scores(pool, a, index_version), before)


def test_a_refresh_that_changes_the_statistics_gives_the_tenant_a_new_generation(
    tenants: tuple[str, str], intake: Intake, pipeline: Pipeline, pool: ConnectionPool
) -> None:
    """Search results are cached under the tenant's generation; documents bump it when they
    change, but the scores change only when the statistics are refreshed, later."""
    a, _ = tenants
    documents = DocumentRepository(pool)
    _ingest(intake, pipeline, a, dict(list(A_DOCUMENTS.items())[:1]))
    documents.refresh_lexical_statistics(tenants=[a])
    _ingest(intake, pipeline, a, dict(list(A_DOCUMENTS.items())[1:]))
    indexed = _generation(pool, a)
    documents.refresh_lexical_statistics(tenants=[a])
    refreshed = _generation(pool, a)
    assert refreshed > indexed
    documents.refresh_lexical_statistics()  # nothing changed: cached results stay valid
    assert _generation(pool, a) == refreshed
