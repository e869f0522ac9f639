"""Search requests and results: validation per SPEC §2, independent of transport."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from rag.core.errors import InvalidInput

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 100
DEFAULT_TOP_K = 5


class SearchMode(enum.StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    FULLTEXT = "fulltext"


@dataclass(frozen=True)
class SearchRequest:
    query: str
    top_k: int = DEFAULT_TOP_K
    mode: SearchMode = SearchMode.HYBRID
    rerank: bool = False
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
        rerank: bool = False,
        document_ids: tuple[str, ...] = (),
        metadata: dict[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> SearchRequest:
        """Check every field; the error names the field and says what is allowed."""
        text = query.strip()
        if not text:
            raise InvalidInput("must not be empty or only whitespace", field="query")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidInput(
                f"is {len(text)} characters; at most {MAX_QUERY_CHARS} are allowed", field="query"
            )
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
