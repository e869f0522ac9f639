"""Claims are capped: a document whose workers keep dying before it ends ``indexed`` or
``quarantined`` is quarantined, with the stage they died in, instead of being claimed forever."""

from __future__ import annotations

import uuid

import pytest
from psycopg_pool import ConnectionPool

from rag.adapters.postgres.documents import DocumentRepository
from rag.core.documents import Claim, DocumentStatus
from rag.ingestion.intake import Intake
from rag.ingestion.pipeline import Pipeline

pytestmark = pytest.mark.integration

# A claim whose deadline is now has run out by the next statement: its worker died at once.
DIES = 0.0


def _received(intake: Intake, tenant: str) -> uuid.UUID:
    text = f"Tides {uuid.uuid4()}\n\nThe moon pulls the sea into two high tides a day."
    return intake.receive(
        text.encode(), tenant=tenant, source_uri=f"file:///claims/{uuid.uuid4()}.txt"
    ).document.id


@pytest.fixture
def tenant(pool: ConnectionPool) -> str:
    return f"cl{uuid.uuid4().hex[:8]}"


def test_a_document_whose_worker_dies_three_times_is_quarantined(
    intake: Intake, pipeline: Pipeline, tenant: str
) -> None:
    documents = pipeline.documents
    doc_id = _received(intake, tenant)
    for attempt in (1, 2, 3):  # a worker claims it, and dies before it is parsed
        assert documents.claim(doc_id, deadline_s=DIES, max_attempts=3) == Claim(attempt=attempt)

    outcome = pipeline.process(doc_id)  # the fourth worker gives up on it
    assert outcome.status is DocumentStatus.QUARANTINED
    assert outcome.reason == "worker died during parsing 3 times"
    record = documents.get(doc_id)
    assert (record.status, record.error_reason, record.attempts) == (
        DocumentStatus.QUARANTINED,
        "worker died during parsing 3 times",
        3,
    )
    assert documents.claim(doc_id, deadline_s=600) == Claim()  # terminal: nothing to claim


def test_a_running_claim_is_neither_taken_nor_counted(
    intake: Intake, pool: ConnectionPool, tenant: str
) -> None:
    documents = DocumentRepository(pool)
    doc_id = _received(intake, tenant)
    assert documents.claim(doc_id, deadline_s=600, max_attempts=1) == Claim(attempt=1)
    assert documents.claim(doc_id, deadline_s=600, max_attempts=1) == Claim()  # its worker is alive
    record = documents.get(doc_id)
    assert (record.status, record.attempts) == (DocumentStatus.RECEIVED, 1)


def test_the_sweeper_quarantines_a_stale_claim_at_the_cap_and_requeues_one_below(
    intake: Intake, pool: ConnectionPool, tenant: str
) -> None:
    documents = DocumentRepository(pool)
    at_cap, below, running, stuck = (_received(intake, tenant) for _ in range(4))
    for _ in range(3):
        documents.claim(at_cap, deadline_s=DIES)
    documents.claim(below, deadline_s=DIES)
    documents.claim(running, deadline_s=600)
    # Its third worker died while embedding: its deadline passed in `chunked`.
    for _ in range(3):
        documents.claim(stuck, deadline_s=DIES)
    documents.advance(stuck, DocumentStatus.PARSED)
    documents.advance(stuck, DocumentStatus.CHUNKED)

    assert below in documents.stale_received(older_than_s=0)
    assert running not in documents.stale_received(older_than_s=0)  # its worker is on it

    swept = documents.sweep(max_attempts=3)
    assert {at_cap, stuck} <= set(swept.quarantined) and below in swept.reset
    assert running not in {*swept.reset, *swept.quarantined}
    assert documents.get(at_cap).error_reason == "worker died during parsing 3 times"
    assert documents.get(stuck).error_reason == "worker died during embedding 3 times"
    requeued = documents.get(below)
    assert (requeued.status, requeued.attempts, requeued.error_reason) == (DocumentStatus.RECEIVED, 1, None)
    assert documents.claim(below, deadline_s=600) == Claim(attempt=2)  # claimable again at once
    assert documents.get(running).status is DocumentStatus.RECEIVED


def test_outage_retries_use_up_no_attempt_and_worker_deaths_still_count(
    intake: Intake, pool: ConnectionPool, tenant: str
) -> None:
    documents = DocumentRepository(pool)
    doc_id = _received(intake, tenant)
    for _ in range(5):  # more outages than max_attempts: each claim's attempt is given back
        assert documents.claim(doc_id, deadline_s=600, max_attempts=3) == Claim(attempt=1)
        documents.advance(doc_id, DocumentStatus.PARSED)
        documents.reset_to_received(doc_id, outage="Triton is unreachable")
    record = documents.get(doc_id)
    assert (record.status, record.attempts, record.outage_retries, record.error_reason) == (
        DocumentStatus.RECEIVED,
        0,
        5,
        "Triton is unreachable",
    )
    assert documents.unfinished([doc_id]) == [record]
    for attempt in (1, 2, 3):  # then its workers really die
        assert documents.claim(doc_id, deadline_s=DIES, max_attempts=3) == Claim(attempt=attempt)
    assert documents.claim(doc_id, deadline_s=600, max_attempts=3) == Claim(
        quarantined="worker died during parsing 3 times"
    )
    assert documents.unfinished([doc_id]) == []


def test_a_retry_takes_back_the_claims_its_dead_try_left_and_no_one_elses(
    intake: Intake, pipeline: Pipeline, pool: ConnectionPool, tenant: str
) -> None:
    """A try that died with its claims (PostgreSQL killed under it) left them running for the
    whole deadline; the next try of the same task instance gives them back and processes the
    documents at once. Another owner's running claim stays untouched."""
    from dataclasses import replace

    documents = DocumentRepository(pool)
    mine, midway, theirs = (_received(intake, tenant) for _ in range(3))
    owner = f"ingest_documents/run-{uuid.uuid4().hex[:6]}/process/0"
    assert documents.claim(mine, deadline_s=900, owner=owner).attempt == 1
    assert documents.claim(midway, deadline_s=900, owner=owner).attempt == 1
    documents.advance(midway, DocumentStatus.PARSED)  # the dead try got this one further
    assert documents.claim(theirs, deadline_s=900, owner="someone/else/process/0").attempt == 1

    retry = replace(pipeline, owner=owner)
    assert retry.process(mine).reason == "being processed by another worker"  # before the release
    released = documents.release_claims([mine, midway, theirs], owner=owner)
    assert set(released) == {mine, midway}
    assert documents.release_claims([mine, midway, theirs], owner=owner) == []  # nothing held now
    for doc_id in (mine, midway):
        assert retry.process(doc_id).status is DocumentStatus.INDEXED
    assert documents.get(theirs).status is DocumentStatus.RECEIVED
    assert set(documents.in_progress([theirs])) == {theirs}  # its owner's claim still runs
