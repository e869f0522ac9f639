"""Documents, their extracted structure, and the ingestion status machine (SPEC §1)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rag.core.errors import FailedPrecondition

# What a caller may attach to a document (issue 12): the title is copied into every search
# hit, cache entry and prompt, so it is bounded like the metadata.
MAX_TITLE_CHARS = 512
MAX_METADATA_KEYS = 32
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 1024


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


# received -> parsed -> chunked -> embedded -> indexed, or quarantined from any non-terminal
# state. A changed source re-enters the machine from indexed/quarantined back to received.
_NEXT = {
    DocumentStatus.RECEIVED: {DocumentStatus.PARSED},
    DocumentStatus.PARSED: {DocumentStatus.CHUNKED},
    DocumentStatus.CHUNKED: {DocumentStatus.EMBEDDED},
    DocumentStatus.EMBEDDED: {DocumentStatus.INDEXED},
    DocumentStatus.INDEXED: {DocumentStatus.RECEIVED},
    DocumentStatus.QUARANTINED: {DocumentStatus.RECEIVED},
}


def check_transition(current: DocumentStatus, target: DocumentStatus) -> None:
    allowed = _NEXT[current] | ({DocumentStatus.QUARANTINED} if not current.terminal else set())
    if target not in allowed:
        raise FailedPrecondition(f"a document cannot go from {current} to {target}")


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
