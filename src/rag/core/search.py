"""Search requests and results: validation per SPEC §2, independent of transport; the filters
and chunk details a search index answers with, the cache keys of results, and the query log's
records."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rag.core.errors import InvalidInput

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 100
DEFAULT_TOP_K = 5


def validate_query(query: str) -> str:
    """The query stripped of surrounding whitespace; :class:`InvalidInput` naming ``query`` when
    that leaves nothing or more than :data:`MAX_QUERY_CHARS` characters (Search and GradeResult)."""
    text = query.strip()
    if not text:
        raise InvalidInput("must not be empty or only whitespace", field="query")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"is {len(text)} characters; at most {MAX_QUERY_CHARS} are allowed", field="query")
    return text


class SearchMode(enum.StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    FULLTEXT = "fulltext"


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int = DEFAULT_TOP_K
    mode: SearchMode = SearchMode.HYBRID
    # None: rerank when a reranker serves (RetrievalService decides, per search).
    rerank: bool | None = None
    document_ids: tuple[uuid.UUID, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    created_after: datetime | None = None
    created_before: datetime | None = None

    @classmethod
    def validated(
        cls,
        *,
        query: str,
        top_k: int | None = None,
        mode: SearchMode = SearchMode.HYBRID,
        rerank: bool | None = None,
        document_ids: tuple[str, ...] = (),
        metadata: dict[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> SearchRequest:
        """Check every field; the error names the field and says what is allowed."""
        text = validate_query(query)
        k = top_k if top_k else DEFAULT_TOP_K  # proto3 sends 0 for "unset"
        if not 1 <= k <= MAX_TOP_K:
            raise InvalidInput(f"must be between 1 and {MAX_TOP_K}, got {k}", field="top_k")
        ids = []
        for raw in document_ids:
            try:
                ids.append(uuid.UUID(raw))
            except ValueError:
                raise InvalidInput(
                    f"{raw!r} is not a document id (a UUID)", field="filters.document_ids"
                ) from None
        if created_after and created_before and created_after >= created_before:
            raise InvalidInput("created_after must be before created_before", field="filters")
        return cls(
            query=text,
            top_k=k,
            mode=mode,
            rerank=rerank,
            document_ids=tuple(ids),
            metadata=dict(metadata or {}),
            created_after=created_after,
            created_before=created_before,
        )


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: str
    document_title: str
    text: str
    page: int | None
    score: float
    char_start: int
    char_end: int
    heading: str | None
    # Cosine similarity of the chunk to the query (None in full-text mode): an absolute
    # relevance signal, unlike fused rank scores.
    similarity: float | None = None


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    model_version: str
    cache_hit: bool
    took_ms: float


@dataclass(frozen=True)
class Filters:
    """What a search is confined to besides the tenant: document ids, document metadata (each
    pair must match) and a creation-time window (after inclusive, before exclusive)."""

    document_ids: tuple[uuid.UUID, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    created_after: datetime | None = None
    created_before: datetime | None = None

    @property
    def empty(self) -> bool:
        return not (self.document_ids or self.metadata or self.created_after or self.created_before)

    @classmethod
    def of(cls, request: SearchRequest) -> Filters:
        return cls(request.document_ids, request.metadata, request.created_after, request.created_before)


@dataclass(frozen=True)
class ChunkHit:
    """A chunk's details as the search index returns them; ``similarity`` is its cosine
    similarity to the query vector when one was given."""

    chunk_id: int
    document_id: uuid.UUID
    document_title: str
    source_uri: str
    text: str
    heading: str | None
    page: int | None
    char_start: int
    char_end: int
    similarity: float | None = None


@dataclass(frozen=True)
class QueryRecord:
    """One search or generation, as the query log keeps it."""

    tenant: str
    username: str | None
    request_id: str | None
    kind: str  # search | generate
    query: str
    top_k: int | None
    result_count: int
    latency_ms: float
    cache_hit: bool
    model_version: str | None
    status: str = "ok"


def cache_key(namespace: str, parts: Sequence[object], *, epoch: str) -> str:
    """A stable key: namespace plus a digest of the global cache ``epoch`` and the JSON-encoded
    parts. A new epoch (every restore writes one) makes every entry of every level unreachable."""
    encoded = json.dumps([epoch, *parts], sort_keys=True, separators=(",", ":"), default=str)
    return f"rag:{namespace}:{hashlib.sha256(encoded.encode()).hexdigest()}"
