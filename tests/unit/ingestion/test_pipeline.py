"""The ingestion pipeline over in-memory ports: the status machine a document goes through,
quarantine with the reason, retries up to the attempts cap, outages that keep the attempt, and
processing again that changes nothing. Parsing is real (in process); storage and the embedder
are the fakes of ``tests/unit/fakes.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import pytest

from rag.core.documents import MAX_ATTEMPTS, DocumentStatus
from rag.core.errors import FailedPrecondition, Unavailable
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline, await_others, unfinished_report
from rag.parsing.extraction import InProcessParser
from tests.unit.fakes import FakeDocumentStore, FakeEmbedder, FakeObjectStorage, embedding

BUCKET = "documents"
TEXT = b"# Solar power\n\nSolar panels turn sunlight into electricity. They last for decades.\n"


@dataclass
class Ingestion:
    documents: FakeDocumentStore = field(default_factory=FakeDocumentStore)
    blobs: FakeObjectStorage = field(default_factory=FakeObjectStorage)
    embed: FakeEmbedder = field(default_factory=FakeEmbedder)

    @property
    def intake(self) -> Intake:
        return Intake(self.documents, self.blobs, BUCKET)

    def pipeline(self, *, max_attempts: int = MAX_ATTEMPTS) -> Pipeline:
        return Pipeline(
            documents=self.documents,
            blobs=self.blobs,
            bucket=BUCKET,
            embed=self.embed,
            parser=InProcessParser(count_tokens=lambda text: len(text.split())),
            model_version="v1",
            max_attempts=max_attempts,
        )

    def receive(self, data: bytes = TEXT, name: str = "solar.md", tenant: str = "acme") -> uuid.UUID:
        return self.intake.receive(data, tenant=tenant, source_uri=f"file:///{name}").document.id


@pytest.fixture
def ingestion() -> Ingestion:
    return Ingestion()


def test_a_received_document_goes_through_every_status_to_indexed(ingestion: Ingestion) -> None:
    doc = ingestion.receive()
    outcome = ingestion.pipeline().process(doc)
    assert (outcome.status, outcome.reason, outcome.outage) == (DocumentStatus.INDEXED, None, False)
    assert [status for i, status in ingestion.documents.moves if i == doc] == [
        DocumentStatus.PARSED,
        DocumentStatus.CHUNKED,
        DocumentStatus.EMBEDDED,
        DocumentStatus.INDEXED,
    ]
    record = ingestion.documents.get(doc)
    assert (record.title, record.attempts, record.embedding_model_version) == ("Solar power", 1, "v1")
    written = ingestion.documents.chunks[doc]
    assert len(written) == outcome.chunks > 0
    for chunk, vector, version in written:  # each chunk with its own vector
        assert chunk.text in TEXT.decode()
        np.testing.assert_allclose(vector, embedding(chunk.text))
        assert version == "v1"
    assert ingestion.documents.in_progress([doc]) == []
    assert unfinished_report(ingestion.documents, [doc]) is None


def test_an_unreadable_document_is_quarantined_with_the_parsers_reason(ingestion: Ingestion) -> None:
    doc = ingestion.receive(b"\x00\x01\x02\x03 binary junk \xff\xfe" * 20, name="junk.bin")
    outcome = ingestion.pipeline().process(doc)
    record = ingestion.documents.get(doc)
    assert outcome.status is record.status is DocumentStatus.QUARANTINED
    assert record.mime_type == "application/octet-stream"  # received all the same, never lost
    assert outcome.reason == record.error_reason
    assert (
        outcome.reason
        == "binary content that is not a supported format (PDF, DOCX, HTML, Markdown or plain text)"
    )
    assert ingestion.embed.calls == [] and doc not in ingestion.documents.chunks
    report = unfinished_report(ingestion.documents, [doc])
    assert report is None  # quarantined is finished


def test_a_transient_error_retries_until_the_attempts_cap_then_quarantines(ingestion: Ingestion) -> None:
    doc = ingestion.receive()
    ingestion.embed.fail = lambda texts: FailedPrecondition("the embedder is loading")
    pipeline = ingestion.pipeline(max_attempts=3)
    first, second = pipeline.process(doc), pipeline.process(doc)
    assert (first.status, second.status) == (DocumentStatus.RECEIVED, DocumentStatus.RECEIVED)
    assert first.reason == "the embedder is loading" and not first.outage
    assert ingestion.documents.get(doc).attempts == 2
    report = unfinished_report(ingestion.documents, [doc])
    assert report is not None and f"{doc} (file:///solar.md): received, attempts 2" in report
    third = pipeline.process(doc)
    assert third.status is DocumentStatus.QUARANTINED
    assert third.reason == "gave up after 3 attempts: the embedder is loading"
    assert ingestion.documents.get(doc).error_reason == third.reason


def test_an_outage_gives_the_attempt_back_and_never_quarantines(ingestion: Ingestion) -> None:
    doc = ingestion.receive()
    ingestion.embed.fail = lambda texts: Unavailable("Triton is unreachable")
    pipeline = ingestion.pipeline(max_attempts=2)
    outcomes = [pipeline.process(doc) for _ in range(4)]
    assert {(o.status, o.outage, o.reason) for o in outcomes} == {
        (DocumentStatus.RECEIVED, True, "Triton is unreachable")
    }
    record = ingestion.documents.get(doc)
    assert (record.attempts, record.outage_retries, record.error_reason) == (0, 4, "Triton is unreachable")
    ingestion.embed.fail = lambda texts: None
    assert pipeline.process(doc).status is DocumentStatus.INDEXED


def test_an_unexpected_error_quarantines_with_the_error(ingestion: Ingestion) -> None:
    doc = ingestion.receive()
    ingestion.embed.fail = lambda texts: ZeroDivisionError("bug")
    outcome = ingestion.pipeline().process(doc)
    assert outcome.status is DocumentStatus.QUARANTINED
    assert outcome.reason == "unexpected error: ZeroDivisionError: bug"


def test_processing_again_changes_nothing(ingestion: Ingestion) -> None:
    doc = ingestion.receive()
    pipeline = ingestion.pipeline()
    assert pipeline.process(doc).status is DocumentStatus.INDEXED
    written = ingestion.documents.chunks[doc]
    again = pipeline.process(doc)
    assert (again.status, again.reason) == (DocumentStatus.INDEXED, "not waiting for ingestion")
    assert len(ingestion.embed.calls) == 1 and ingestion.documents.chunks[doc] is written
    # The same bytes received again are the same document, unchanged: nothing to process.
    received = ingestion.intake.receive(TEXT, tenant="acme", source_uri="file:///solar.md")
    assert (received.document.id, received.changed) == (doc, False)
    assert ingestion.documents.get(doc).status is DocumentStatus.INDEXED
    assert ingestion.blobs.puts == 1
    # New content replaces the chunks, never adds to them.
    changed = ingestion.intake.receive(
        b"# Wind\n\nWind turbines.\n", tenant="acme", source_uri="file:///solar.md"
    )
    assert (changed.document.id, changed.changed) == (doc, True)
    assert pipeline.process(doc).status is DocumentStatus.INDEXED
    assert [c.text for c, _, _ in ingestion.documents.chunks[doc]] == ["Wind turbines."]


def test_a_document_another_worker_claimed_is_left_to_it(ingestion: Ingestion) -> None:
    doc = ingestion.receive()
    assert ingestion.documents.claim(doc, deadline_s=60).attempt == 1
    outcome = ingestion.pipeline().process(doc)
    assert (outcome.status, outcome.reason) == (DocumentStatus.RECEIVED, "being processed by another worker")
    assert ingestion.embed.calls == []
    assert await_others(ingestion.documents, [doc], timeout_s=0) == [doc]


def test_a_document_whose_workers_kept_dying_is_quarantined_at_the_next_claim(ingestion: Ingestion) -> None:
    doc = ingestion.receive()
    for _ in range(2):
        assert ingestion.documents.claim(doc, deadline_s=60, max_attempts=2).attempt is not None
        ingestion.documents.expire_claims()
    outcome = ingestion.pipeline(max_attempts=2).process(doc)
    assert (outcome.status, outcome.reason) == (
        DocumentStatus.QUARANTINED,
        "worker died during parsing 2 times",
    )
    assert ingestion.embed.calls == []
