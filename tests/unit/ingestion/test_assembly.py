"""process_batch: one ingestion task's batch, its counts, its claims and its outages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from rag.core.documents import DocumentStatus
from rag.core.errors import Unavailable
from rag.ingestion.assembly import BatchPipeline, process_batch
from rag.ingestion.pipeline import Outcome


@dataclass
class FakeDocuments:
    held: set[uuid.UUID] = field(default_factory=set)  # claims an earlier try left behind
    released: list[tuple[list[uuid.UUID], str]] = field(default_factory=list)

    def release_claims(self, document_ids: Sequence[uuid.UUID], *, owner: str) -> list[uuid.UUID]:
        self.released.append((list(document_ids), owner))
        return [i for i in document_ids if i in self.held]


@dataclass
class FakePipeline:
    outcomes: dict[uuid.UUID, Outcome]
    owner: str | None = None
    documents: FakeDocuments = field(default_factory=FakeDocuments)
    processed: list[uuid.UUID] = field(default_factory=list)

    def process_many(self, document_ids: Sequence[uuid.UUID]) -> list[Outcome]:
        self.processed.extend(document_ids)
        return [self.outcomes[i] for i in document_ids]


def _ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_the_batch_counts_its_documents_by_resulting_status() -> None:
    a, b, c = _ids(3)
    pipeline = FakePipeline(
        {
            a: Outcome(a, DocumentStatus.INDEXED, chunks=4, seconds={"parse": 0.1}),
            b: Outcome(b, DocumentStatus.INDEXED, chunks=2),
            c: Outcome(c, DocumentStatus.QUARANTINED, reason="not a PDF"),
        }
    )
    counts = process_batch([str(a), str(b), str(c)], lambda: pipeline)
    assert counts == {"indexed": 2, "quarantined": 1}
    assert pipeline.processed == [a, b, c]
    assert pipeline.documents.released == []  # no owner: nothing to take back


def test_an_owner_takes_back_the_claims_of_its_earlier_try_first() -> None:
    a, b = _ids(2)
    pipeline = FakePipeline(
        {i: Outcome(i, DocumentStatus.INDEXED) for i in (a, b)},
        owner="ingest_documents/run/process/0",
        documents=FakeDocuments(held={b}),
    )
    process_batch([str(a), str(b)], lambda: pipeline)
    assert pipeline.documents.released == [([a, b], "ingest_documents/run/process/0")]


def test_an_outage_fails_the_task_after_the_whole_batch() -> None:
    a, b, c = _ids(3)
    pipeline = FakePipeline(
        {
            a: Outcome(a, DocumentStatus.INDEXED),
            b: Outcome(b, DocumentStatus.RECEIVED, reason="Triton is unreachable", outage=True),
            c: Outcome(c, DocumentStatus.RECEIVED, reason="PostgreSQL is unreachable", outage=True),
        }
    )
    with pytest.raises(Unavailable, match=r"2 of 3 documents are back to received .*PostgreSQL"):
        process_batch([str(a), str(b), str(c)], lambda: pipeline)
    assert pipeline.processed == [a, b, c]


def test_an_empty_batch_builds_no_pipeline() -> None:
    def never() -> BatchPipeline:
        raise AssertionError("an empty batch must not open the parser pool or the index")

    assert process_batch([], never) == {}
