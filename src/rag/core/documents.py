"""Documents, their extracted structure, and the ingestion status machine (SPEC §1)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

# What a caller may attach to a document (issue 12): the title is copied into every search
# hit, cache entry and prompt, so it is bounded like the metadata.
MAX_TITLE_CHARS = 512
MAX_METADATA_KEYS = 32
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 1024

# The dimension of every stored chunk vector: chunks.embedding is vector(384) (migration 0001),
# so an embedder of another dimension needs a schema migration first.
EMBEDDING_DIMENSION = 384


class DocumentStatus(enum.StrEnum):
    RECEIVED = "received"
    PARSED = "parsed"
    CHUNKED = "chunked"
    EMBEDDED = "embedded"
    INDEXED = "indexed"
    QUARANTINED = "quarantined"

    @property
    def terminal(self) -> bool:
        return self in (DocumentStatus.INDEXED, DocumentStatus.QUARANTINED)


TERMINAL_STATUSES = tuple(s for s in DocumentStatus if s.terminal)
IN_FLIGHT_STATUSES = tuple(s for s in DocumentStatus if not s.terminal)

# The status machine (its one home; the PostgreSQL adapter enforces it in SQL): received ->
# parsed -> chunked -> embedded -> indexed, or quarantined from any non-terminal state. Each
# status maps to the statuses the pipeline may move a document into it from. Going back to
# ``received`` is not an advance: new content, a retry or a requeue resets a document there.
ADVANCES_FROM: dict[DocumentStatus, tuple[DocumentStatus, ...]] = {
    DocumentStatus.PARSED: (DocumentStatus.RECEIVED,),
    DocumentStatus.CHUNKED: (DocumentStatus.PARSED,),
    DocumentStatus.EMBEDDED: (DocumentStatus.CHUNKED,),
    DocumentStatus.INDEXED: (DocumentStatus.EMBEDDED,),
    DocumentStatus.QUARANTINED: IN_FLIGHT_STATUSES,
}

# Claims of a document before it is given up on, counted since it last entered ``received``
# from outside the pipeline (an upload of new content, a requeue of an indexed document).
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class DocumentRecord:
    """A stored document: what it is, where its bytes are, and where it stands in ingestion."""

    id: uuid.UUID
    tenant: str
    source_uri: str
    title: str
    content_hash: str
    size_bytes: int
    mime_type: str
    status: DocumentStatus
    error_reason: str | None
    attempts: int
    embedding_model_version: str | None
    blob_key: str | None
    metadata: dict[str, str]
    deadline_at: datetime | None
    created_at: datetime
    updated_at: datetime
    outage_retries: int = 0  # retries after a dependency outage; they use up no attempt


@dataclass(frozen=True)
class Claim:
    """A claim on a document: the attempt it counts (1 for the first), or None when it was not
    claimed: another worker's claim still runs, the document is not ``received``, or it had been
    claimed ``max_attempts`` times and is now quarantined, with ``quarantined`` as the reason."""

    attempt: int | None = None
    quarantined: str | None = None


@dataclass(frozen=True)
class Received:
    """Outcome of receiving content: the document, and whether anything changed."""

    document: DocumentRecord
    changed: bool


@dataclass(frozen=True)
class Block:
    """A structural unit of extracted text: a paragraph, list item, table row or heading.

    ``start`` is the block's character offset in the document's extracted text; ``heading`` is
    the heading path it sits under ("Methods > Cohort"); ``page`` is 1-based where the format
    has pages (PDF).
    """

    text: str
    start: int
    heading: str | None = None
    page: int | None = None
    is_heading: bool = False

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class ParsedDocument:
    """What a parser extracts: the full text and its blocks, whose spans index into ``text``."""

    title: str
    text: str
    blocks: tuple[Block, ...]
    mime_type: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A retrievable piece of a document with everything a citation needs."""

    ordinal: int
    text: str
    char_start: int
    char_end: int
    token_count: int
    heading: str | None = None
    page: int | None = None
