"""``Pipeline.process_many``: chunks of several documents embedded together, each document
written with its own vectors, outcomes in the order asked, and a failure confined to what it
touched (a group's embedding, or the documents after a database outage)."""

from __future__ import annotations

import numpy as np

from rag.core.documents import DocumentStatus
from rag.core.errors import FailedPrecondition, Unavailable
from tests.unit.fakes import embedding
from tests.unit.ingestion.test_pipeline import Ingestion

DOCS = {
    "a.md": b"# A\n\nAlpha is short.\n",
    "b.md": b"# B\n\nBravo has a much longer sentence than the others do, with many more words in it.\n",
    "c.md": b"# C\n\nCharlie sits in between, neither short nor long.\n",
}


def test_documents_are_embedded_together_and_each_gets_its_own_vectors() -> None:
    ingestion = Ingestion()
    ids = [ingestion.receive(data, name) for name, data in DOCS.items()]
    outcomes = ingestion.pipeline().process_many(ids)
    assert [o.document_id for o in outcomes] == ids
    assert {o.status for o in outcomes} == {DocumentStatus.INDEXED}
    assert len(ingestion.embed.calls) == 1  # one call for the whole group
    # Sent shortest first (similar lengths share a model batch), written back in each one's order.
    sent = ingestion.embed.calls[0]
    assert sent == sorted(sent, key=lambda text: len(text.split()))
    for doc in ids:
        for chunk, vector, _ in ingestion.documents.chunks[doc]:
            np.testing.assert_allclose(vector, embedding(chunk.text))


def test_a_failed_group_fails_only_its_documents() -> None:
    ingestion = Ingestion()
    ids = [ingestion.receive(data, name) for name, data in DOCS.items()]
    ingestion.embed.fail = lambda texts: (
        FailedPrecondition("Bravo is too long") if any("Bravo" in t for t in texts) else None
    )
    outcomes = ingestion.pipeline().process_many(ids, group_chunks=1)  # a group per document
    assert [(o.status, o.reason) for o in outcomes] == [
        (DocumentStatus.INDEXED, None),
        (DocumentStatus.RECEIVED, "Bravo is too long"),
        (DocumentStatus.INDEXED, None),
    ]


def test_after_a_database_outage_the_rest_of_the_batch_is_not_started() -> None:
    ingestion = Ingestion()
    ids = [ingestion.receive(data, name) for name, data in DOCS.items()]
    ingestion.documents.failures[("claim", ids[1])] = Unavailable("PostgreSQL is unreachable")
    outcomes = ingestion.pipeline().process_many(ids)
    assert [(o.status, o.outage) for o in outcomes] == [
        (DocumentStatus.INDEXED, False),
        (DocumentStatus.RECEIVED, True),
        (DocumentStatus.RECEIVED, True),
    ]
    assert outcomes[2].reason == "PostgreSQL is unreachable"
    assert ingestion.documents.get(ids[2]).attempts == 0  # never claimed: it waits for the retry
