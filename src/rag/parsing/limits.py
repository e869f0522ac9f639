"""The limits every document is parsed under: one home for them (settings ``PARSE_*``).

Input limits are checked before a parser runs; output limits as text is extracted; resource
limits (memory, CPU, wall time) are enforced on the worker process that parses
(:mod:`rag.parsing.isolation`). Each message that reports a breach names the setting to raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.settings import Settings


@dataclass(frozen=True)
class ParseLimits:
    # Input
    max_bytes: int = 100 * 2**20  # UPLOAD_MAX_BYTES
    max_expanded_bytes: int = 200 * 2**20  # what a DOCX may unzip to
    max_compression_ratio: float = 200.0
    max_archive_entries: int = 5000
    # Output
    max_pages: int = 5000  # PARSE_MAX_PAGES
    max_chars: int = 10_000_000  # PARSE_MAX_CHARS: extracted text, about a 5,000-page book
    max_chunks: int = 20_000  # PARSE_MAX_CHUNKS
    # The worker process
    max_memory_mb: int = 1024  # PARSE_MAX_MEMORY_MB: its address space
    max_cpu_s: int = 120  # PARSE_MAX_CPU_S: CPU seconds per document
    timeout_s: float = 300.0  # PARSE_TIMEOUT_S: wall-clock seconds per document

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pages", "max_chars", "max_chunks", "max_memory_mb", "max_cpu_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"ParseLimits.{name} must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("ParseLimits.timeout_s must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseLimits:
        return cls(
            max_bytes=settings.UPLOAD_MAX_BYTES,
            max_pages=settings.PARSE_MAX_PAGES,
            max_chars=settings.PARSE_MAX_CHARS,
            max_chunks=settings.PARSE_MAX_CHUNKS,
            max_memory_mb=settings.PARSE_MAX_MEMORY_MB,
            max_cpu_s=settings.PARSE_MAX_CPU_S,
            timeout_s=settings.PARSE_TIMEOUT_S,
        )
