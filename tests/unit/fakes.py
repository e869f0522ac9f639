"""In-memory implementations of the ports (:mod:`rag.core.ports`) for the services' unit tests.

Each fake keeps the contract its Protocol states (the document store enforces the status
machine and the attempts cap, the search index confines every call to its tenant) and records
what was asked of it, so a test can check what a service did. mypy checks that each one
satisfies its Protocol wherever a test passes it to a service. It runs past 400 lines because
it holds one fake per port, the whole set a test imports from one place, in the order of
:mod:`rag.core.ports`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rag.core.documents import (
    ADVANCES_FROM,
    IN_FLIGHT_STATUSES,
    MAX_ATTEMPTS,
    Chunk,
    Claim,
    DocumentRecord,
    DocumentStatus,
    Received,
)
from rag.core.errors import FailedPrecondition, NotFound
from rag.core.ports import ObjectInfo, Priority
from rag.core.search import ChunkHit, Filters, QueryRecord

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DIMENSION = 8
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def embedding(text: str) -> NDArray[np.float32]:
    """A deterministic unit vector of ``text``: its words hashed into :data:`DIMENSION` buckets."""
    vector = np.zeros(DIMENSION, dtype=np.float32)
    for word in words(text) or [text]:
        vector[hashlib.sha256(word.encode()).digest()[0] % DIMENSION] += 1.0
    return vector / np.linalg.norm(vector)


# -- documents -------------------------------------------------------------------------------
@dataclass
class FakeDocumentStore:
    """Documents, claims and chunks in dicts. A claim runs until :meth:`expire_claims`;
    ``failures[(method, document_id)]`` is raised by that call for that document."""

    records: dict[uuid.UUID, DocumentRecord] = field(default_factory=dict)
    chunks: dict[uuid.UUID, list[tuple[Chunk, NDArray[np.float32], str]]] = field(default_factory=dict)
    claimed: set[uuid.UUID] = field(default_factory=set)
    claim_owners: dict[uuid.UUID, str | None] = field(default_factory=dict)  # who took each claim
    ran_out: set[uuid.UUID] = field(default_factory=set)
    moves: list[tuple[uuid.UUID, DocumentStatus]] = field(default_factory=list)
    failures: dict[tuple[str, uuid.UUID], Exception] = field(default_factory=dict)

    def _check(self, method: str, document_id: uuid.UUID) -> DocumentRecord:
        if (method, document_id) in self.failures:
            raise self.failures[(method, document_id)]
        if document_id not in self.records:
            raise NotFound(f"document {document_id} does not exist")
        return self.records[document_id]

    def _set(self, record: DocumentRecord, **changes: Any) -> None:
        self.records[record.id] = replace(record, updated_at=EPOCH, **changes)
        if "status" in changes:
            self.moves.append((record.id, self.records[record.id].status))

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
        existing = next(
            (r for r in self.records.values() if (r.tenant, r.source_uri) == (tenant, source_uri)), None
        )
        if store_blob is not None:
            store_blob()
        if existing is not None and existing.content_hash == content_hash:
            return Received(existing, changed=False)
        record = DocumentRecord(
            id=existing.id if existing else uuid.uuid4(),
            tenant=tenant,
            source_uri=source_uri,
            title=title,
            content_hash=content_hash,
            size_bytes=size_bytes,
            mime_type=mime_type,
            status=DocumentStatus.RECEIVED,
            error_reason=None,
            attempts=0,
            embedding_model_version=None,
            blob_key=blob_key,
            metadata=dict(metadata),
            deadline_at=None,
            created_at=EPOCH,
            updated_at=EPOCH,
        )
        self.records[record.id] = record
        self.claimed.discard(record.id)
        return Received(record, changed=True)

    def get(self, document_id: uuid.UUID, *, tenant: str | None = None) -> DocumentRecord:
        record = self._check("get", document_id)
        if tenant is not None and record.tenant != tenant:
            raise NotFound(f"document {document_id} does not exist")
        return record

    def source_uris(self, *, tenant: str, prefix: str) -> dict[str, uuid.UUID]:
        return {
            r.source_uri: r.id
            for r in self.records.values()
            if r.tenant == tenant and r.source_uri.startswith(prefix)
        }

    def delete(
        self,
        document_ids: Iterable[uuid.UUID],
        *,
        tenant: str | None = None,
        drop_blob: Callable[[str], None] | None = None,
    ) -> list[DocumentRecord]:
        deleted = [
            self.records.pop(i)
            for i in list(document_ids)
            if i in self.records and tenant in (None, self.records[i].tenant)
        ]
        for record in deleted:
            self.chunks.pop(record.id, None)
        used = {(r.tenant, r.blob_key) for r in self.records.values()}
        for owner, key in sorted({(r.tenant, r.blob_key) for r in deleted if r.blob_key}):
            if drop_blob is not None and (owner, key) not in used and key is not None:
                drop_blob(key)
        return deleted

    def claim(
        self,
        document_id: uuid.UUID,
        *,
        deadline_s: float,
        max_attempts: int = MAX_ATTEMPTS,
        owner: str | None = None,
    ) -> Claim:
        record = self._check("claim", document_id)
        if record.status is not DocumentStatus.RECEIVED or document_id in self.claimed:
            return Claim()
        if record.attempts >= max_attempts:
            reason = (
                f"worker died during parsing {record.attempts} times"
                if document_id in self.ran_out
                else f"gave up after {record.attempts} attempts that did not finish"
            )
            self._set(record, status=DocumentStatus.QUARANTINED, error_reason=reason)
            return Claim(quarantined=reason)
        self._set(record, attempts=record.attempts + 1)
        self.claimed.add(document_id)
        self.claim_owners[document_id] = owner
        return Claim(attempt=record.attempts + 1)

    def release_claims(self, document_ids: Sequence[uuid.UUID], *, owner: str) -> list[uuid.UUID]:
        released = [
            i
            for i in dict.fromkeys(document_ids)
            if i in self.claimed
            and self.claim_owners.get(i) == owner
            and self.records[i].status in IN_FLIGHT_STATUSES
        ]
        for i in released:
            self.claimed.discard(i)
            self._set(self.records[i], status=DocumentStatus.RECEIVED)
        return released

    def expire_claims(self) -> None:
        """Every running claim runs out (its worker died)."""
        self.ran_out |= self.claimed
        self.claimed.clear()

    def advance(
        self,
        document_id: uuid.UUID,
        target: DocumentStatus,
        *,
        reason: str | None = None,
        title: str | None = None,
    ) -> None:
        record = self._check("advance", document_id)
        if target is DocumentStatus.QUARANTINED and not reason:
            raise FailedPrecondition("a quarantined document needs a reason")
        if record.status not in ADVANCES_FROM.get(target, ()):
            raise FailedPrecondition(f"document {document_id} cannot move to {target} from {record.status}")
        self._set(
            record,
            status=target,
            error_reason=reason if target is DocumentStatus.QUARANTINED else None,
            title=record.title or title or record.title,
        )

    def quarantine(self, document_id: uuid.UUID, reason: str) -> None:
        self.advance(document_id, DocumentStatus.QUARANTINED, reason=reason[:2000])
        self.claimed.discard(document_id)

    def reset_to_received(self, document_id: uuid.UUID, *, outage: str | None = None) -> None:
        record = self._check("reset_to_received", document_id)
        if record.status in IN_FLIGHT_STATUSES:
            self.claimed.discard(document_id)
            self._set(
                record,
                status=DocumentStatus.RECEIVED,
                error_reason=outage,
                attempts=max(record.attempts - 1, 0) if outage else record.attempts,
                outage_retries=record.outage_retries + (1 if outage else 0),
            )

    def write_chunks(
        self,
        document_id: uuid.UUID,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
        *,
        model_version: str,
    ) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        record = self._check("write_chunks", document_id)
        if record.status is not DocumentStatus.EMBEDDED:
            raise FailedPrecondition(f"document {document_id} is {record.status}, not embedded")
        self.chunks[document_id] = [(c, v, model_version) for c, v in zip(chunks, vectors, strict=True)]
        self.claimed.discard(document_id)
        self._set(
            record, status=DocumentStatus.INDEXED, error_reason=None, embedding_model_version=model_version
        )

    def in_progress(self, document_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        busy = {DocumentStatus.PARSED, DocumentStatus.CHUNKED, DocumentStatus.EMBEDDED}
        return [
            i
            for i in document_ids
            if i in self.records and (self.records[i].status in busy or i in self.claimed)
        ]

    def unfinished(self, document_ids: Sequence[uuid.UUID]) -> list[DocumentRecord]:
        return [
            self.records[i] for i in document_ids if i in self.records and not self.records[i].status.terminal
        ]


# -- object storage --------------------------------------------------------------------------
@dataclass
class FakeObjectUpload:
    storage: FakeObjectStorage
    bucket: str
    staging_key: str
    part_bytes: int
    buffer: bytearray = field(default_factory=bytearray)
    flushes: int = 0
    digest: str | None = None
    discarded: bool = False

    @property
    def size(self) -> int:
        return len(self.buffer)

    def feed(self, data: bytes) -> bool:
        self.buffer += data
        return len(self.buffer) >= self.part_bytes * (self.flushes + 1)

    def head(self, limit: int) -> bytes:
        return bytes(self.buffer[:limit])

    def flush(self) -> None:
        self.flushes += 1

    def finish(self) -> str:
        self.digest = hashlib.sha256(self.buffer).hexdigest()
        return self.digest

    def store(self, key: str, *, content_type: str = "application/octet-stream") -> None:
        if self.digest is None:
            raise RuntimeError("finish() the upload before storing it")
        if not self.storage.exists(self.bucket, key):
            self.storage.put(self.bucket, key, bytes(self.buffer), content_type=content_type)

    def discard(self) -> None:
        self.discarded = True


@dataclass
class FakeObjectStorage:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    uploads: list[FakeObjectUpload] = field(default_factory=list)
    puts: int = 0

    def put(
        self, bucket: str, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        self.objects[(bucket, key)] = data
        self.puts += 1

    def writer(self, bucket: str, *, owner: str = "", part_bytes: int = 8 * 2**20) -> FakeObjectUpload:
        upload = FakeObjectUpload(self, bucket, f".staging/{owner or '-'}/{len(self.uploads)}", part_bytes)
        self.uploads.append(upload)
        return upload

    def get(self, bucket: str, key: str) -> bytes:
        if (bucket, key) not in self.objects:
            raise NotFound(f"s3://{bucket}/{key} does not exist")
        return self.objects[(bucket, key)]

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        for (b, key), data in sorted(self.objects.items()):
            if b == bucket and key.startswith(prefix):
                yield ObjectInfo(key, len(data), EPOCH)


# -- models ----------------------------------------------------------------------------------
@dataclass
class FakeEmbedder:
    """:func:`embedding` of each text; ``fail(texts)`` may return an error to raise instead."""

    calls: list[list[str]] = field(default_factory=list)
    fail: Callable[[Sequence[str]], Exception | None] = lambda texts: None

    def __call__(self, texts: Sequence[str], /) -> NDArray[np.float32]:
        self.calls.append(list(texts))
        error = self.fail(texts)
        if error is not None:
            raise error
        return np.stack([embedding(t) for t in texts]) if texts else np.zeros((0, DIMENSION), np.float32)


@dataclass
class FakeModels:
    """Query embeddings (``vectors``, else :func:`embedding`), reranking by ``scores`` (else by
    shared words), and generation of the scripted ``answer`` tokens."""

    vectors: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    answer: list[str] = field(default_factory=list)
    embedded: list[str] = field(default_factory=list)
    reranked: list[list[str]] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    reranker_serves: bool = False

    async def embed(
        self, texts: Sequence[str], *, priority: Priority = Priority.INTERACTIVE, timeout: float | None = None
    ) -> NDArray[np.float32]:
        self.embedded.extend(texts)
        return np.stack([self.vectors.get(t, embedding(t)) for t in texts])

    async def rerank(
        self,
        query: str,
        passages: Sequence[str],
        *,
        priority: Priority = Priority.INTERACTIVE,
        timeout: float | None = None,
    ) -> NDArray[np.float32]:
        self.reranked.append(list(passages))
        return np.array(
            [self.scores.get(p, len(set(words(query)) & set(words(p)))) for p in passages], dtype=np.float32
        )

    async def can_rerank(self) -> bool:
        return self.reranker_serves

    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        timeout: float | None = None,
        priority: Priority = Priority.GENERATION,
    ) -> AsyncIterator[str]:
        self.prompts.append(prompt)
        for token in self.answer[:max_tokens]:
            yield token


@dataclass
class FakeSupport:
    """Support from a table of (claim, premise) scores; any other pair scores ``default``.
    ``calls`` holds each call's pairs."""

    table: dict[tuple[str, str], float] = field(default_factory=dict)
    default: float = 0.05
    calls: list[list[tuple[str, str]]] = field(default_factory=list)
    model_version: str = "fake-verifier"

    async def support(
        self, pairs: Sequence[tuple[str, str]], *, timeout: float | None = None
    ) -> NDArray[np.float32]:
        self.calls.append(list(pairs))
        return np.array([self.table.get(pair, self.default) for pair in pairs], dtype=np.float32)


# -- search ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexedChunk:
    chunk_id: int
    tenant: str
    document_id: uuid.UUID
    text: str
    vector: NDArray[np.float32]
    version: str = "v1"
    title: str = "a title"
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: datetime = EPOCH


@dataclass
class FakeSearchIndex:
    """Dense search by exact cosine distance, lexical search by the count of query words a
    chunk holds (chunks holding none are not found); ``calls`` names each call and its tenant."""

    chunks: list[IndexedChunk] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def add(
        self,
        tenant: str,
        text: str,
        *,
        vector: NDArray[np.float32] | None = None,
        document_id: uuid.UUID | None = None,
        version: str = "v1",
        metadata: dict[str, str] | None = None,
        created_at: datetime = EPOCH,
    ) -> IndexedChunk:
        """A chunk of ``tenant`` (of a new document unless ``document_id`` is given)."""
        chunk = IndexedChunk(
            chunk_id=len(self.chunks) + 1,
            tenant=tenant,
            document_id=document_id or uuid.uuid4(),
            text=text,
            vector=embedding(text) if vector is None else vector,
            version=version,
            metadata=metadata or {},
            created_at=created_at,
        )
        self.chunks.append(chunk)
        return chunk

    def _found(self, tenant: str, version: str, filters: Filters) -> list[IndexedChunk]:
        return [
            c
            for c in self.chunks
            if c.tenant == tenant
            and c.version == version
            and (not filters.document_ids or c.document_id in filters.document_ids)
            and filters.metadata.items() <= c.metadata.items()
            and (filters.created_after is None or c.created_at >= filters.created_after)
            and (filters.created_before is None or c.created_at < filters.created_before)
        ]

    def dense(
        self, *, tenant: str, version: str, vector: NDArray[np.float32], k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        self.calls.append(("dense", tenant))
        found = [
            (c.chunk_id, 1.0 - float(np.dot(c.vector, vector))) for c in self._found(tenant, version, filters)
        ]
        return sorted(found, key=lambda r: (r[1], r[0]))[:k]

    def lexical(
        self, *, tenant: str, version: str, query: str, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        self.calls.append(("lexical", tenant))
        terms = set(words(query))
        scored = [
            (c.chunk_id, float(len(terms & set(words(c.text)))))
            for c in self._found(tenant, version, filters)
        ]
        return sorted((s for s in scored if s[1] > 0), key=lambda r: (-r[1], r[0]))[:k]

    def hits(
        self, chunk_ids: list[int], *, tenant: str, vector: NDArray[np.float32] | None = None
    ) -> dict[int, ChunkHit]:
        self.calls.append(("hits", tenant))
        return {
            c.chunk_id: ChunkHit(
                c.chunk_id,
                c.document_id,
                c.title,
                f"file:///{c.document_id}",
                c.text,
                None,
                None,
                0,
                len(c.text),
                None if vector is None else float(np.dot(c.vector, vector)),
            )
            for c in self.chunks
            if c.chunk_id in chunk_ids and c.tenant == tenant
        }


@dataclass
class FakeVersions:
    model_version: str | None = "v1"
    generations: dict[str, int] = field(default_factory=dict)
    epoch: str = "e1"

    async def current(self, tenant: str) -> tuple[str | None, int, str]:
        return self.model_version, self.generations.get(tenant, 0), self.epoch


@dataclass
class FakeCache:
    entries: dict[str, bytes] = field(default_factory=dict)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self.entries.get(k) for k in keys]

    def set_many_soon(self, items: Mapping[str, bytes]) -> None:
        self.entries.update(items)


@dataclass
class FakeQueryLog:
    records: list[QueryRecord] = field(default_factory=list)

    async def record(self, record: QueryRecord) -> None:
        self.records.append(record)
