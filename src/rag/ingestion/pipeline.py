"""Take received documents through parse -> chunk -> embed -> index, or quarantine them.

A parse failure is permanent: the document is quarantined with the parser's reason. A failure of
a dependency (Triton, object storage) is transient: the document goes back to ``received`` for
the next run, and after ``max_attempts`` it is quarantined with the last error. One document's
failure never stops the others.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg
from numpy.typing import NDArray

from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres.documents import DocumentRepository
from rag.core.chunking import ChunkingOptions, TokenCounter, chunk_document
from rag.core.documents import DocumentStatus
from rag.core.errors import RagError, UnprocessableDocument
from rag.parsing import ParseLimits, parse

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], NDArray[np.float32]]


@dataclass(frozen=True)
class Outcome:
    document_id: uuid.UUID
    status: DocumentStatus
    chunks: int = 0
    reason: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Pipeline:
    documents: DocumentRepository
    blobs: BlobStore
    bucket: str
    embed: Embed
    count_tokens: TokenCounter
    model_version: str
    chunking: ChunkingOptions = field(default_factory=ChunkingOptions)
    limits: ParseLimits = field(default_factory=ParseLimits)
    max_attempts: int = 3
    deadline_s: float = 15 * 60.0

    def process(self, document_id: uuid.UUID) -> Outcome:
        """Run one received document to a terminal state (or back to received on a transient error)."""
        doc = self.documents.get(document_id)
        if doc.status is not DocumentStatus.RECEIVED:
            return Outcome(document_id, doc.status, reason="not waiting for ingestion")
        attempt = self.documents.record_attempt(document_id, deadline_s=self.deadline_s)
        timings: dict[str, float] = {}
        began = time.perf_counter()
        try:
            assert doc.blob_key is not None, "a received document has a blob"
            data = self.blobs.get(self.bucket, doc.blob_key)
            timings["fetch"] = time.perf_counter() - began
            began = time.perf_counter()
            parsed = parse(data, filename=doc.source_uri.rsplit("/", 1)[-1], limits=self.limits)
            self.documents.advance(document_id, DocumentStatus.PARSED, title=parsed.title)
            timings["parse"] = time.perf_counter() - began
            began = time.perf_counter()
            chunks = chunk_document(parsed, self.count_tokens, self.chunking)
            if not chunks:
                raise UnprocessableDocument("document has no text to index")
            self.documents.advance(document_id, DocumentStatus.CHUNKED)
            timings["chunk"] = time.perf_counter() - began
            began = time.perf_counter()
            vectors = self.embed([c.text for c in chunks])
            self.documents.advance(document_id, DocumentStatus.EMBEDDED)
            timings["embed"] = time.perf_counter() - began
            began = time.perf_counter()
            self.documents.write_chunks(document_id, chunks, vectors, model_version=self.model_version)
            timings["write"] = time.perf_counter() - began
            return Outcome(document_id, DocumentStatus.INDEXED, chunks=len(chunks), seconds=timings)
        except UnprocessableDocument as exc:
            self.documents.quarantine(document_id, str(exc))
            return Outcome(document_id, DocumentStatus.QUARANTINED, reason=str(exc), seconds=timings)
        except (RagError, psycopg.OperationalError) as exc:  # transient: retry later
            if attempt >= self.max_attempts:
                reason = f"gave up after {attempt} attempts: {exc}"
                self.documents.quarantine(document_id, reason)
                return Outcome(document_id, DocumentStatus.QUARANTINED, reason=reason, seconds=timings)
            log.warning("document %s attempt %d failed, will retry: %s", document_id, attempt, exc)
            self.documents.reset_to_received(document_id)
            return Outcome(document_id, DocumentStatus.RECEIVED, reason=str(exc), seconds=timings)
        except Exception as exc:  # a bug must not stall the batch: quarantine with the error
            log.exception("document %s failed unexpectedly", document_id)
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
            self.documents.quarantine(document_id, reason)
            return Outcome(document_id, DocumentStatus.QUARANTINED, reason=reason, seconds=timings)
