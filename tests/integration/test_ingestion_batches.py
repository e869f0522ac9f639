"""Pipeline.process_many: the outcomes of process, with chunks of many documents embedded together."""

from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import psycopg
import pytest

from rag.adapters.triton import BlockingTriton
from rag.core.documents import DocumentStatus
from rag.core.errors import Unavailable
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from tests.fixtures.corpus import POISON, TOPICS, mixed_corpus

pytestmark = pytest.mark.integration


def test_process_many_ends_each_document_as_process_would(
    intake: Intake, pipeline: Pipeline, db: psycopg.Connection, blocking_triton: BlockingTriton
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    poison = {name: data for name, data in mixed_corpus().items() if name in {"empty.txt", "random.pdf"}}
    corpus = {name: text.encode() for name, text in TOPICS.items()} | poison
    ids = {
        name: intake.receive(
            data, tenant=tenant, source_uri=f"file:///many/{name}", filename=name
        ).document.id
        for name, data in corpus.items()
    }
    # Small groups: several embedding calls, one in flight while the next group is prepared.
    outcomes = pipeline.process_many(list(ids.values()), group_chunks=4)
    assert [o.document_id for o in outcomes] == list(ids.values())
    for name, outcome in zip(ids, outcomes, strict=True):
        expected = DocumentStatus.QUARANTINED if name in POISON else DocumentStatus.INDEXED
        assert outcome.status is expected, (name, outcome.reason)
    # Every chunk got its own text's vector (the group is embedded sorted by length, then unsorted).
    rows = db.execute(
        "SELECT c.text, c.embedding::float4[] FROM chunks c WHERE c.tenant = %s ORDER BY c.id", (tenant,)
    ).fetchall()
    assert len(rows) == sum(o.chunks for o in outcomes) >= len(TOPICS)
    expected_vectors = blocking_triton.embed([text for text, _ in rows])
    stored = np.array([v for _, v in rows], dtype=np.float32)
    assert np.allclose(stored, expected_vectors, atol=1e-4)
    # A second run finds nothing waiting.
    again = pipeline.process_many(list(ids.values()))
    assert all(o.reason == "not waiting for ingestion" for o in again)


def test_an_embedding_outage_sends_the_batch_back_without_using_up_attempts(
    intake: Intake, pipeline: Pipeline, db: psycopg.Connection
) -> None:
    def broken(texts: object) -> object:
        raise Unavailable("Triton is unreachable")

    down = replace(pipeline, embed=broken, max_attempts=2)  # type: ignore[arg-type]
    tenant = f"t{uuid.uuid4().hex[:10]}"
    docs = [
        intake.receive(f"Retry me {n}.".encode(), tenant=tenant, filename="r.txt").document for n in range(3)
    ]
    poison = intake.receive(b"", tenant=tenant, filename="empty.txt").document
    ids = [d.id for d in docs] + [poison.id]
    for _ in range(3):  # more outages than max_attempts
        outcomes = down.process_many(ids)
        assert [(o.status, o.outage) for o in outcomes[:3]] == [(DocumentStatus.RECEIVED, True)] * 3
        assert not outcomes[3].outage  # a permanent error is quarantined, outage or not
    rows = db.execute(
        "SELECT status::text, attempts, outage_retries, error_reason FROM documents WHERE id = ANY(%s)",
        ([d.id for d in docs],),
    ).fetchall()
    assert rows == [("received", 0, 3, "Triton is unreachable")] * 3
    assert pipeline.documents.get(poison.id).status is DocumentStatus.QUARANTINED

    back = pipeline.process_many(ids)  # the dependency is back
    assert [o.status for o in back] == [DocumentStatus.INDEXED] * 3 + [DocumentStatus.QUARANTINED]
    assert pipeline.documents.unfinished(ids) == []
