"""Ingestion on the real stack: intake -> pipeline -> indexed or quarantined, idempotently."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from rag.core.documents import DocumentStatus
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline
from tests.fixtures.corpus import POISON, mixed_corpus

pytestmark = pytest.mark.integration


def _chunks(db: psycopg.Connection, doc_id: uuid.UUID) -> list[tuple[int, str, int]]:
    return db.execute(
        "SELECT ordinal, text, id FROM chunks WHERE document_id = %s ORDER BY ordinal", (doc_id,)
    ).fetchall()


def test_mixed_corpus_ends_indexed_or_quarantined_and_reruns_change_nothing(
    intake: Intake, pipeline: Pipeline, db: psycopg.Connection
) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    corpus = mixed_corpus()
    ids = {}
    for name, data in corpus.items():
        received = intake.receive(data, tenant=tenant, source_uri=f"file:///corpus/{name}", filename=name)
        assert received.changed
        ids[name] = received.document.id
    outcomes = {name: pipeline.process(doc_id) for name, doc_id in ids.items()}
    for name, outcome in outcomes.items():
        if name in POISON:
            assert outcome.status is DocumentStatus.QUARANTINED, name
            assert outcome.reason
        else:
            assert outcome.status is DocumentStatus.INDEXED, (name, outcome.reason)
            assert outcome.chunks >= 1
    rows: dict[str, str] = dict(
        db.execute("SELECT source_uri, status::text FROM documents WHERE tenant = %s", (tenant,)).fetchall()
    )
    assert len(rows) == len(corpus)
    reasons: dict[str, str] = dict(
        db.execute(
            "SELECT source_uri, error_reason FROM documents WHERE tenant = %s AND status = 'quarantined'",
            (tenant,),
        ).fetchall()
    )
    assert "zip bomb" in reasons["file:///corpus/bomb.docx"]
    page = db.execute(
        "SELECT c.page FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.id = %s AND c.text LIKE %s",
        (ids["bp.pdf"], "%Diuretics%"),
    ).fetchone()
    assert page == (2,)

    before = {name: _chunks(db, doc_id) for name, doc_id in ids.items()}
    for name, data in corpus.items():
        again = intake.receive(data, tenant=tenant, source_uri=f"file:///corpus/{name}", filename=name)
        assert not again.changed
        assert pipeline.process(again.document.id).status in {
            DocumentStatus.INDEXED,
            DocumentStatus.QUARANTINED,
        }
    assert {name: _chunks(db, doc_id) for name, doc_id in ids.items()} == before

    edited = corpus["notes.txt"] + b"\n\nSunlight makes vitamin D in the skin."
    changed = intake.receive(
        edited, tenant=tenant, source_uri="file:///corpus/notes.txt", filename="notes.txt"
    )
    assert changed.changed and changed.document.id == ids["notes.txt"]
    assert pipeline.process(ids["notes.txt"]).status is DocumentStatus.INDEXED
    after = {name: _chunks(db, doc_id) for name, doc_id in ids.items()}
    assert after["notes.txt"] != before["notes.txt"]
    assert any("Sunlight" in text for _, text, _ in after["notes.txt"])
    assert {k: v for k, v in after.items() if k != "notes.txt"} == {
        k: v for k, v in before.items() if k != "notes.txt"
    }


def test_upload_of_same_bytes_is_one_document(intake: Intake) -> None:
    tenant = f"t{uuid.uuid4().hex[:10]}"
    first = intake.receive(b"Same bytes twice.", tenant=tenant, filename="a.txt")
    second = intake.receive(b"Same bytes twice.", tenant=tenant, filename="b.txt")
    assert first.document.id == second.document.id and not second.changed
    other = intake.receive(b"Same bytes twice.", tenant=tenant + "x", filename="a.txt")
    assert other.document.id != first.document.id


def test_a_model_not_ready_is_an_outage_another_transient_error_quarantines_at_the_cap(
    intake: Intake, pipeline: Pipeline
) -> None:
    from dataclasses import replace

    from tritonclient.utils import InferenceServerException

    from rag.adapters.triton import translate
    from rag.core.errors import NotFound

    def not_loaded(texts: object) -> object:  # Triton restarted and has not loaded its models yet
        raise translate(
            InferenceServerException("Request for unknown model: 'embedder' has no available versions"),
            model="embedder",
        )

    tenant = f"t{uuid.uuid4().hex[:10]}"
    doc = intake.receive(b"Retry me.", tenant=tenant, filename="r.txt").document
    for _ in range(3):
        outcome = replace(pipeline, embed=not_loaded, max_attempts=2).process(doc.id)  # type: ignore[arg-type]
        assert (outcome.status, outcome.outage) == (DocumentStatus.RECEIVED, True)
    assert pipeline.documents.get(doc.id).attempts == 0

    def lost(texts: object) -> object:  # not a dependency being down: counts as an attempt
        raise NotFound("the embedding model version is gone")

    flaky = replace(pipeline, embed=lost, max_attempts=2)  # type: ignore[arg-type]
    assert flaky.process(doc.id).status is DocumentStatus.RECEIVED
    final = flaky.process(doc.id)
    assert final.status is DocumentStatus.QUARANTINED and "gave up after 2 attempts" in (final.reason or "")


def test_a_document_handed_to_two_workers_is_processed_once(intake: Intake, pipeline: Pipeline) -> None:
    """Two runs were given the same document (an upload and its re-upload): the first claims it,
    the second leaves it alone instead of failing and resetting it under the first."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import replace

    fetching = threading.Event()
    release = threading.Event()

    class SlowBlobs:  # the first worker is still fetching: the document is still `received`
        def get(self, bucket: str, key: str) -> bytes:
            fetching.set()
            assert release.wait(30)
            return pipeline.blobs.get(bucket, key)

    first_worker = replace(pipeline, blobs=SlowBlobs())  # type: ignore[arg-type]
    doc = intake.receive(b"Claim me once.", tenant=f"t{uuid.uuid4().hex[:10]}", filename="c.txt").document
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(first_worker.process, doc.id)
        assert fetching.wait(30)  # claimed, and still `received`
        assert pipeline.documents.get(doc.id).status is DocumentStatus.RECEIVED
        second = pipeline.process(doc.id)
        release.set()
        done = first.result(timeout=60)

    assert second.status is DocumentStatus.RECEIVED and second.reason == "being processed by another worker"
    assert done.status is DocumentStatus.INDEXED
    assert pipeline.documents.get(doc.id).attempts == 1  # the second worker counted no attempt
