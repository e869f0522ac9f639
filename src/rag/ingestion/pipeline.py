"""Take received documents through parse -> chunk -> embed -> index, or quarantine them.

Parsing and chunking go through the ``parser`` port: in the DAGs, worker processes under memory,
CPU, time and output limits (:class:`~rag.parsing.isolation.ParserPool`). A parse failure, a
broken limit included, is permanent: the document is quarantined with the parser's reason. An
outage of a dependency (Triton, PostgreSQL or object storage unavailable, overloaded or past its
deadline) is no fault of the document: it goes back to ``received`` with its attempt given back
(counted as an outage retry), and its :class:`Outcome` says ``outage`` so the caller can fail
and be retried later. Any other transient error retries until ``max_attempts``, then quarantines.
One document's failure never stops the others.

``process`` runs one document; ``process_many`` runs a batch with the same outcomes, but embeds
the chunks of many documents together (full Triton batches instead of one short request per
document) and prepares the next group while the current one is being embedded.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from rag.core.chunking import ChunkingOptions
from rag.core.documents import MAX_ATTEMPTS, Chunk, DocumentStatus
from rag.core.errors import (
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    RagError,
    Unavailable,
)
from rag.core.ports import DocumentStore, Embedder, ObjectStorage
from rag.parsing.extraction import DocumentParser

log = logging.getLogger(__name__)

# Chunks embedded together by process_many: a few full Triton batches (max_batch_size 32), sent
# as concurrent requests by the Triton client, so the dynamic batcher always has work queued.
EMBED_GROUP_CHUNKS = 128

# A dependency that cannot serve now: the document is not at fault, its attempts are kept.
OUTAGES = (Unavailable, DeadlineExceeded, Overloaded)


@dataclass(frozen=True)
class Outcome:
    document_id: uuid.UUID
    status: DocumentStatus
    chunks: int = 0
    reason: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_bytes: int | None = None  # of the parser worker, on this document
    outage: bool = False  # back to ``received`` because a dependency was down (``reason`` says which)


@dataclass
class _Prepared:
    """A document parsed and chunked (status ``chunked``), waiting for its vectors."""

    document_id: uuid.UUID
    attempt: int
    chunks: list[Chunk]
    seconds: dict[str, float]
    peak_rss_bytes: int | None = None


@dataclass
class Pipeline:
    documents: DocumentStore
    blobs: ObjectStorage
    bucket: str
    embed: Embedder
    parser: DocumentParser
    model_version: str
    chunking: ChunkingOptions = field(default_factory=ChunkingOptions)
    max_attempts: int = MAX_ATTEMPTS
    deadline_s: float = 15 * 60.0
    owner: str | None = None  # who claims (an Airflow task instance): its retry takes them back

    def process(self, document_id: uuid.UUID) -> Outcome:
        """Run one received document to a terminal state (or back to received on a transient error)."""
        prepared = self._prepare(document_id)
        if isinstance(prepared, Outcome):
            return prepared
        began = time.perf_counter()
        try:
            vectors = self.embed([c.text for c in prepared.chunks])
        except Exception as exc:
            return self._failed(prepared.document_id, prepared.attempt, exc, prepared.seconds)
        return self._finish(prepared, vectors, time.perf_counter() - began)

    def process_many(
        self, document_ids: Sequence[uuid.UUID], *, group_chunks: int = EMBED_GROUP_CHUNKS
    ) -> list[Outcome]:
        """``process`` for each document, in order, embedding chunks of several documents at once.

        Documents are prepared (fetched, parsed, chunked) until a group holds ``group_chunks``
        chunks; the group is embedded in one call while the next group is prepared, then each
        document of the group is written in its own transaction. A failed embedding call fails
        only the documents of its group, each as ``process`` would (retry or quarantine). When a
        document cannot even be read or claimed (the database is down), the ones after it are not
        started: their outcomes are ``received`` with ``outage`` set, like its own.
        The ``embed`` seconds of an outcome are its group's embedding time shared by chunk count.
        """
        outcomes: dict[uuid.UUID, Outcome] = {}
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-embed") as embedder:
            pending: tuple[list[_Prepared], Future[NDArray[np.float32]], float] | None = None
            group: list[_Prepared] = []
            size = 0

            def submit(batch: list[_Prepared]) -> tuple[list[_Prepared], Future[NDArray[np.float32]], float]:
                chunks = [c for p in batch for c in p.chunks]
                return batch, embedder.submit(self._embed_by_length, chunks), time.perf_counter()

            not_started: Outcome | None = None
            for document_id in document_ids:
                try:
                    prepared = self._prepare(document_id)
                except OUTAGES as exc:  # reading or claiming it failed: the database is down
                    log.warning(
                        "documents from %s on not started, a dependency is down: %s", document_id, exc
                    )
                    not_started = Outcome(document_id, DocumentStatus.RECEIVED, reason=str(exc), outage=True)
                    break
                if isinstance(prepared, Outcome):
                    outcomes[document_id] = prepared
                    continue
                group.append(prepared)
                size += len(prepared.chunks)
                if size >= group_chunks:
                    if pending is not None:
                        outcomes.update(self._finish_group(*pending))
                    pending, group, size = submit(group), [], 0
            if pending is not None:
                outcomes.update(self._finish_group(*pending))
            if group:
                outcomes.update(self._finish_group(*submit(group)))
        if not_started is not None:  # the rest of the batch waits, untouched, for the task's retry
            return [outcomes.get(i) or replace(not_started, document_id=i) for i in document_ids]
        return [outcomes[i] for i in document_ids]

    def _embed_by_length(self, chunks: Sequence[Chunk]) -> NDArray[np.float32]:
        """Embed in order of token count, so each model batch pads its texts to similar lengths."""
        order = sorted(range(len(chunks)), key=lambda i: chunks[i].token_count)
        vectors = self.embed([chunks[i].text for i in order])
        unsorted = np.empty_like(vectors)
        unsorted[order] = vectors
        return unsorted

    # -- steps ----------------------------------------------------------------------------------
    def _prepare(self, document_id: uuid.UUID) -> _Prepared | Outcome:
        doc = self.documents.get(document_id)
        if doc.status is not DocumentStatus.RECEIVED:
            return Outcome(document_id, doc.status, reason="not waiting for ingestion")
        claim = self.documents.claim(
            document_id, deadline_s=self.deadline_s, max_attempts=self.max_attempts, owner=self.owner
        )
        if claim.quarantined is not None:  # claimed max_attempts times already: its workers died
            return Outcome(document_id, DocumentStatus.QUARANTINED, reason=claim.quarantined)
        attempt = claim.attempt
        if attempt is None:  # another worker claimed it first (two runs were handed it)
            return Outcome(document_id, DocumentStatus.RECEIVED, reason="being processed by another worker")
        timings: dict[str, float] = {}
        began = time.perf_counter()
        try:
            assert doc.blob_key is not None, "a received document has a blob"
            data = self.blobs.get(self.bucket, doc.blob_key)
            timings["fetch"] = time.perf_counter() - began
            began = time.perf_counter()
            extracted = self.parser.extract(
                data,
                filename=doc.source_uri.rsplit("/", 1)[-1],
                chunking=self.chunking,
                label=str(document_id),
            )
            timings["chunk"] = extracted.seconds.get("chunk", 0.0)
            timings["parse"] = time.perf_counter() - began - timings["chunk"]
            self.documents.advance(document_id, DocumentStatus.PARSED, title=extracted.title)
            self.documents.advance(document_id, DocumentStatus.CHUNKED)
        except Exception as exc:
            return self._failed(document_id, attempt, exc, timings)
        return _Prepared(document_id, attempt, list(extracted.chunks), timings, extracted.peak_rss_bytes)

    def _finish_group(
        self, group: list[_Prepared], vectors: Future[NDArray[np.float32]], submitted: float
    ) -> dict[uuid.UUID, Outcome]:
        try:
            embedded = vectors.result()
        except Exception as exc:
            return {p.document_id: self._failed(p.document_id, p.attempt, exc, p.seconds) for p in group}
        elapsed = time.perf_counter() - submitted
        total = sum(len(p.chunks) for p in group)
        outcomes: dict[uuid.UUID, Outcome] = {}
        start = 0
        for prepared in group:
            n = len(prepared.chunks)
            outcomes[prepared.document_id] = self._finish(
                prepared, embedded[start : start + n], elapsed * n / total
            )
            start += n
        return outcomes

    def _finish(self, prepared: _Prepared, vectors: NDArray[np.float32], embed_s: float) -> Outcome:
        document_id, timings = prepared.document_id, prepared.seconds
        try:
            self.documents.advance(document_id, DocumentStatus.EMBEDDED)
            timings["embed"] = embed_s
            began = time.perf_counter()
            self.documents.write_chunks(
                document_id, prepared.chunks, vectors, model_version=self.model_version
            )
            timings["write"] = time.perf_counter() - began
        except Exception as exc:
            return self._failed(document_id, prepared.attempt, exc, timings)
        return Outcome(
            document_id,
            DocumentStatus.INDEXED,
            chunks=len(prepared.chunks),
            seconds=timings,
            peak_rss_bytes=prepared.peak_rss_bytes,
        )

    def _failed(
        self, document_id: uuid.UUID, attempt: int, exc: Exception, timings: dict[str, float]
    ) -> Outcome:
        """A permanent error quarantines; an outage gives the attempt back (and the document is
        claimable at once); another transient error retries until ``max_attempts``."""
        if isinstance(exc, OUTAGES):
            log.warning("document %s back to received, a dependency is down: %s", document_id, exc)
            self.documents.reset_to_received(document_id, outage=str(exc))
            return Outcome(
                document_id, DocumentStatus.RECEIVED, reason=str(exc), seconds=timings, outage=True
            )
        if isinstance(exc, InvalidInput):  # unreadable, or content the database refuses: permanent
            self.documents.quarantine(document_id, str(exc))
            return Outcome(document_id, DocumentStatus.QUARANTINED, reason=str(exc), seconds=timings)
        if isinstance(exc, RagError):  # transient (Unavailable, DeadlineExceeded, ...): retry later
            if attempt >= self.max_attempts:
                reason = f"gave up after {attempt} attempts: {exc}"
                self.documents.quarantine(document_id, reason)
                return Outcome(document_id, DocumentStatus.QUARANTINED, reason=reason, seconds=timings)
            log.warning("document %s attempt %d failed, will retry: %s", document_id, attempt, exc)
            self.documents.reset_to_received(document_id)
            return Outcome(document_id, DocumentStatus.RECEIVED, reason=str(exc), seconds=timings)
        # A bug must not stall the batch: quarantine with the error.
        log.error("document %s failed unexpectedly", document_id, exc_info=exc)
        reason = f"unexpected error: {type(exc).__name__}: {exc}"
        self.documents.quarantine(document_id, reason)
        return Outcome(document_id, DocumentStatus.QUARANTINED, reason=reason, seconds=timings)


def await_others(
    documents: DocumentStore,
    document_ids: Sequence[uuid.UUID],
    *,
    timeout_s: float,
    poll_s: float = 5.0,
) -> list[uuid.UUID]:
    """Wait until no worker processes any of ``document_ids`` (see
    :meth:`DocumentStore.in_progress`), at most ``timeout_s``; the ones still in progress.

    A run asked for a document that another run had claimed first (an upload's document that a
    folder's run took on, a re-upload while the first run works) cannot call itself finished
    until that one is; one nobody processes is not waited for.
    """
    deadline = time.monotonic() + timeout_s
    while (busy := documents.in_progress(document_ids)) and time.monotonic() < deadline:
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    return busy


def unfinished_report(documents: DocumentStore, document_ids: Sequence[uuid.UUID]) -> str | None:
    """None when every one of ``document_ids`` (what a run took on) is indexed, quarantined or
    deleted; else a message naming each other document, its status and its last error."""
    unfinished = documents.unfinished(document_ids)
    if not unfinished:
        return None
    lines = [
        f"{d.id} ({d.source_uri}): {d.status.value}, attempts {d.attempts}, outage retries"
        f" {d.outage_retries}, last error: {d.error_reason or 'none recorded (still being processed?)'}"
        for d in unfinished
    ]
    return (
        f"{len(unfinished)} of {len(document_ids)} documents this run took on are not finished; they stay"
        " claimable and the sweeper retries them (or trigger the run again once the dependency is back):\n"
        + "\n".join(lines)
    )
