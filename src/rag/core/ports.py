"""The ports: what the services need of the outside world, as :class:`typing.Protocol` classes.

Intake, the pipeline and the sources (``rag.ingestion``), the retrieval service and the
generation service are typed by these, never by an adapter class: ``rag.adapters`` implements
them against PostgreSQL, object storage, Redis and Triton, and ``tests/unit/fakes.py`` in
memory. Each Protocol holds only what the services call; an adapter may offer more. The values
the ports exchange live in :mod:`rag.core.documents` and :mod:`rag.core.search`, except the two
below that belong to no domain module: a model call's :class:`Priority` and an object listing's
:class:`ObjectInfo`.

The document store, object storage, the search index, the embedder and the label store block
(the async services call them in worker threads); the query models, the generator, the index versions, the
result cache and the query log are awaited.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from rag.core.documents import Chunk, Claim, DocumentRecord, DocumentStatus, Received
from rag.core.labels import LabelledQuery, LabelSource, RelevanceLabel
from rag.core.search import ChunkHit, Filters, QueryRecord


class Priority(enum.IntEnum):
    """The order a model server should serve calls in (SPEC §2): interactive queries, then
    generation, then batch ingestion."""

    INTERACTIVE = 1
    GENERATION = 2
    BATCH = 3


@dataclass(frozen=True)
class ObjectInfo:
    """An object in a bucket, as a listing names it."""

    key: str
    size: int
    last_modified: datetime


# -- documents -------------------------------------------------------------------------------
class DocumentStore(Protocol):
    """Documents and their chunks, with the ingestion status machine
    (:data:`rag.core.documents.ADVANCES_FROM`) enforced by the store."""

    def receive(
        self,
        *,
        tenant: str,
        source_uri: str,
        title: str,
        content_hash: str,
        size_bytes: int,
        mime_type: str,
        blob_key: str,
        metadata: dict[str, str],
        deadline_s: float,
        store_blob: Callable[[], None] | None = None,
    ) -> Received:
        """Record a document as ``received`` (keyed by tenant and ``source_uri``); the same
        content again changes nothing. ``store_blob`` runs first, under the blob's lock; if it
        raises, nothing is recorded."""
        ...

    def get(self, document_id: uuid.UUID, *, tenant: str | None = None) -> DocumentRecord:
        """One document; NotFound when it does not exist or, with ``tenant``, is another's."""
        ...

    def source_uris(self, *, tenant: str, prefix: str) -> dict[str, uuid.UUID]:
        """Documents of ``tenant`` whose source starts with ``prefix``, by source."""
        ...

    def delete(
        self,
        document_ids: Iterable[uuid.UUID],
        *,
        tenant: str | None = None,
        drop_blob: Callable[[str], None] | None = None,
    ) -> list[DocumentRecord]:
        """Delete documents (with their chunks); what was deleted. ``drop_blob`` is called with
        each blob key no document uses any more, under the blob's lock."""
        ...

    def claim(
        self,
        document_id: uuid.UUID,
        *,
        deadline_s: float,
        max_attempts: int = ...,
        owner: str | None = None,
    ) -> Claim:
        """Claim a ``received`` document until the deadline, counting the attempt; one claimed
        ``max_attempts`` times already is quarantined instead."""
        ...

    def release_claims(self, document_ids: Sequence[uuid.UUID], *, owner: str) -> list[uuid.UUID]:
        """Give back the claims ``owner`` still holds on ``document_ids`` (an earlier try of its
        died with them): those documents go back to ``received``, their attempts kept. Returns them."""
        ...

    def advance(self, document_id: uuid.UUID, target: DocumentStatus, *, title: str | None = None) -> None:
        """Move a document forward; FailedPrecondition for a move the status machine refuses.
        ``title`` fills in the title of a document received without one."""
        ...

    def quarantine(self, document_id: uuid.UUID, reason: str) -> None:
        """Quarantine an in-flight document with ``reason``."""
        ...

    def reset_to_received(self, document_id: uuid.UUID, *, outage: str | None = None) -> None:
        """Back to ``received``, claimable at once; with ``outage`` the attempt is given back."""
        ...

    def write_chunks(
        self,
        document_id: uuid.UUID,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
        *,
        model_version: str,
    ) -> None:
        """Replace an ``embedded`` document's chunks and mark it ``indexed``, all at once."""
        ...

    def in_progress(self, document_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """Those of ``document_ids`` a worker is processing now."""
        ...

    def unfinished(self, document_ids: Sequence[uuid.UUID]) -> list[DocumentRecord]:
        """Those of ``document_ids`` neither indexed nor quarantined (deleted ones are finished)."""
        ...


# -- object storage --------------------------------------------------------------------------
class ObjectUpload(Protocol):
    """One object written while its bytes arrive, named by its content once they all have
    (:class:`rag.adapters.objectstore.BlobWriter` says when each call does I/O)."""

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        ...

    @property
    def staging_key(self) -> str:
        """Where the bytes wait until :meth:`store` (for operators and logs)."""
        ...

    def feed(self, data: bytes) -> bool:
        """Buffer ``data``; whether a whole part is buffered (time to :meth:`flush`)."""
        ...

    def head(self, limit: int) -> bytes:
        """The first ``limit`` bytes; only before the first :meth:`flush`."""
        ...

    def flush(self) -> None: ...

    def finish(self) -> str:
        """The content's sha256 (hex), once every byte is fed."""
        ...

    def store(self, key: str, *, content_type: str = ...) -> None:
        """Make ``key`` hold the content, unless it exists already."""
        ...

    def discard(self) -> None:
        """Remove whatever was staged; idempotent, and final."""
        ...


class ObjectStorage(Protocol):
    """Buckets of objects (the documents' bytes are stored as ``<tenant>/<sha256>``)."""

    def put(self, bucket: str, key: str, data: bytes, *, content_type: str = ...) -> None: ...

    def writer(self, bucket: str, *, owner: str = ..., part_bytes: int = ...) -> ObjectUpload: ...

    def get(self, bucket: str, key: str) -> bytes:
        """The object's bytes; NotFound when it does not exist."""
        ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def delete(self, bucket: str, key: str) -> None:
        """Idempotent: deleting a missing object succeeds."""
        ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects whose key starts with ``prefix``."""
        ...


# -- models ----------------------------------------------------------------------------------
class Embedder(Protocol):
    """Batch embedding (ingestion): one L2-normalized row per text, in order."""

    def __call__(self, texts: Sequence[str], /) -> NDArray[np.float32]: ...


class QueryModels(Protocol):
    """The models a search calls: the query embedder and the cross-encoder reranker."""

    async def embed(
        self, texts: Sequence[str], *, priority: Priority = ..., timeout: float | None = None
    ) -> NDArray[np.float32]:
        """L2-normalized embeddings, one row per text."""
        ...

    async def rerank(
        self, query: str, passages: Sequence[str], *, priority: Priority = ..., timeout: float | None = None
    ) -> NDArray[np.float32]:
        """Relevance scores, one per passage (higher is more relevant)."""
        ...

    async def can_rerank(self) -> bool:
        """Whether a reranker serves now (searches rerank by default when one does)."""
        ...


class SupportScorer(Protocol):
    """The support model: how strongly each premise supports its claim, as a probability in [0, 1]
    (calibrated, so one threshold serves every answer)."""

    @property
    def model_version(self) -> str:
        """What scored, e.g. ``verifier:3`` or ``embedder:<version>``, reported with each answer."""
        ...

    async def support(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float | None = None
    ) -> NDArray[np.float32]:
        """One score per (claim, premise) pair, in order."""
        ...


class TextGenerator(Protocol):
    """The generator model: an answer's tokens as they are produced."""

    def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = ...,
        stop: Sequence[str] = ...,
        timeout: float | None = None,
        priority: Priority = ...,
    ) -> AsyncIterator[str]: ...


# -- search ----------------------------------------------------------------------------------
class SearchIndex(Protocol):
    """Chunks of one tenant and one embedding model version, searched two ways. Every call is
    confined to ``tenant``: another tenant's chunks are never returned."""

    def dense(
        self, *, tenant: str, version: str, vector: NDArray[np.float32], k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest chunks as (chunk id, cosine distance), nearest first."""
        ...

    def lexical(
        self, *, tenant: str, version: str, query: str, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """The ``k`` best chunks by BM25 as (chunk id, score), best first."""
        ...

    def hits(
        self, chunk_ids: list[int], *, tenant: str, vector: NDArray[np.float32] | None = None
    ) -> dict[int, ChunkHit]:
        """Details of those of ``chunk_ids`` that are ``tenant``'s; with ``vector``, each one's
        cosine similarity to it."""
        ...


class IndexVersions(Protocol):
    """What a cached search result depends on besides the request."""

    async def current(self, tenant: str) -> tuple[str | None, int, str]:
        """(active embedding model version or None, the tenant's document generation, the
        cache epoch)."""
        ...


class ResultCache(Protocol):
    """Bytes under string keys (:func:`rag.core.search.cache_key`), possibly forgotten at any
    time; trouble in the cache reads as a miss, never as an error."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def set_many_soon(self, items: Mapping[str, bytes]) -> None:
        """Store ``items`` without waiting for every level of the cache."""
        ...


class QueryLog(Protocol):
    """The search history (telemetry: a record may be dropped, a search never fails for it)."""

    async def record(self, record: QueryRecord) -> None: ...


# -- relevance labels ------------------------------------------------------------------------
class LabelStore(Protocol):
    """A tenant's relevance labels (:mod:`rag.core.labels`). Every call is confined to
    ``tenant``: a document of another tenant is refused exactly like one that does not exist."""

    def grade(
        self,
        tenant: str,
        query_text: str,
        document_id: uuid.UUID,
        grade: int,
        *,
        chunk_id: int | None = None,
        labelled_by: str,
        source: LabelSource = ...,
        external_id: str | None = None,
    ) -> RelevanceLabel:
        """Record ``grade`` for the document and the query (created when new); the latest grade
        of a (query, document) pair wins. NotFound when the document is not ``tenant``'s."""
        ...

    def labelled_queries(self, tenant: str) -> list[LabelledQuery]:
        """Every labelled query of ``tenant`` with its grades, in a stable order (by key)."""
        ...
