"""One document's bytes to its title and chunks, within :class:`ParseLimits`.

:func:`extract` is the whole job of a parser worker (:mod:`rag.parsing.isolation`): sniff, parse,
chunk, and check the output limits. :class:`DocumentParser` is the port the ingestion pipeline
calls; :class:`InProcessParser` runs :func:`extract` in the calling process (tests, tools that
parse trusted files), :class:`~rag.parsing.isolation.ParserPool` in worker processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from rag.core.chunking import ChunkingOptions, TokenCounter, chunk_document
from rag.core.documents import Chunk
from rag.core.errors import UnprocessableDocument
from rag.parsing import parse
from rag.parsing.limits import ParseLimits


@dataclass(frozen=True)
class Extracted:
    """What ingestion keeps of a parsed document: its title, type and chunks."""

    title: str
    mime_type: str
    chunks: tuple[Chunk, ...]
    seconds: dict[str, float] = field(default_factory=dict)  # "parse", "chunk"
    peak_rss_bytes: int | None = None  # of the worker process, while on this document


class DocumentParser(Protocol):
    """Turns a document's bytes into chunks, or raises UnprocessableDocument with the reason."""

    def extract(
        self, data: bytes, *, filename: str, chunking: ChunkingOptions, label: str = ""
    ) -> Extracted: ...

    def close(self) -> None: ...


def extract(
    data: bytes,
    *,
    filename: str,
    chunking: ChunkingOptions,
    count_tokens: TokenCounter,
    limits: ParseLimits,
) -> Extracted:
    began = time.perf_counter()
    parsed = parse(data, filename=filename, limits=limits)
    parsed_at = time.perf_counter()
    chunks = chunk_document(parsed, count_tokens, chunking)
    if not chunks:
        raise UnprocessableDocument("document has no text to index")
    if len(chunks) > limits.max_chunks:
        raise UnprocessableDocument(
            f"document makes {len(chunks)} chunks; the limit is {limits.max_chunks} (PARSE_MAX_CHUNKS)"
        )
    seconds = {"parse": parsed_at - began, "chunk": time.perf_counter() - parsed_at}
    return Extracted(parsed.title, parsed.mime_type, tuple(chunks), seconds)


@dataclass(frozen=True)
class InProcessParser:
    """:func:`extract` in the calling process: output limits only, no memory, CPU or time limits."""

    count_tokens: TokenCounter
    limits: ParseLimits = field(default_factory=ParseLimits)

    def extract(self, data: bytes, *, filename: str, chunking: ChunkingOptions, label: str = "") -> Extracted:
        return extract(
            data, filename=filename, chunking=chunking, count_tokens=self.count_tokens, limits=self.limits
        )

    def close(self) -> None:
        pass
