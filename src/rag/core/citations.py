"""A citation: the source sentence that supports a sentence of an answer.

The quote is always the chunk's own text at ``[quote_start, quote_end)``, and ``support`` is the
support model's score that it supports the answer sentence citing it (see
:mod:`rag.core.grounding`, which makes them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Citation:
    number: int
    chunk_id: int
    document_id: str
    title: str
    page: int | None
    quote: str
    quote_start: int
    quote_end: int
    support: float = 0.0
