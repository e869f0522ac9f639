"""Decide a document's type from its bytes, and decode text formats."""

from __future__ import annotations

import enum
import io
import re
import zipfile
from dataclasses import dataclass

from charset_normalizer import from_bytes

from rag.core.errors import UnprocessableDocument

SUPPORTED = "PDF, DOCX, HTML, Markdown or plain text"


class Kind(enum.StrEnum):
    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    HTML = "text/html"
    MARKDOWN = "text/markdown"
    TEXT = "text/plain"


@dataclass(frozen=True)
class ParseLimits:
    max_bytes: int = 100 * 2**20
    max_expanded_bytes: int = 200 * 2**20  # what a DOCX may unzip to
    max_compression_ratio: float = 200.0
    max_archive_entries: int = 5000
    max_pages: int = 5000


_HTML = re.compile(rb"^\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.I | re.S)
_HTML_TAGS = re.compile(r"<(p|div|h[1-6]|ul|ol|li|table|br|a|span)(\s[^>]*)?>", re.I)
_MARKDOWN = re.compile(r"^(#{1,6}\s+\S|```|\s*[-*+]\s+\S|\s*\d+\.\s+\S|>\s|\|.*\|\s*$)", re.M)


def _decode(data: bytes) -> str:
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(codec)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        matches = list(from_bytes(data))
        if not matches:
            raise UnprocessableDocument(
                f"binary content that is not a supported format ({SUPPORTED})"
            ) from None
        # Short Western text fits many single-byte code pages equally well; prefer the most
        # common one (Windows-1252, a superset of Latin-1's printable range) among the best.
        least_chaos = min(m.chaos for m in matches)
        best = [m for m in matches if m.chaos <= least_chaos + 1e-9]
        match = next((m for m in best if m.encoding in {"cp1252", "latin_1"}), best[0])
        text = str(match)
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\n\r\f")
    if "\x00" in text[:65536] or controls > max(8, len(text[:65536]) // 100):
        raise UnprocessableDocument(f"binary content that is not a supported format ({SUPPORTED})")
    return text


def _check_zip(data: bytes, limits: ParseLimits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnprocessableDocument(f"damaged ZIP container: {exc}") from None
    if len(entries) > limits.max_archive_entries:
        raise UnprocessableDocument(
            f"archive has {len(entries)} entries (limit {limits.max_archive_entries})"
        )
    expanded = sum(e.file_size for e in entries)
    packed = max(1, sum(e.compress_size for e in entries))
    if expanded > limits.max_expanded_bytes or expanded / packed > limits.max_compression_ratio:
        raise UnprocessableDocument(
            f"archive expands to {expanded / 2**20:.0f} MiB from {packed / 2**20:.1f} MiB "
            f"(limits {limits.max_expanded_bytes / 2**20:.0f} MiB, "
            f"ratio {limits.max_compression_ratio:.0f}): refusing a possible zip bomb"
        )
    return archive


def sniff(data: bytes, limits: ParseLimits | None = None) -> tuple[Kind, str | None]:
    """The document's kind, and its decoded text for text formats."""
    limits = limits or ParseLimits()
    if not data:
        raise UnprocessableDocument("empty document (0 bytes)")
    if len(data) > limits.max_bytes:
        raise UnprocessableDocument(f"document is {len(data)} bytes (limit {limits.max_bytes})")
    if data.startswith(b"%PDF-"):
        return Kind.PDF, None
    if data.startswith(b"PK\x03\x04"):
        archive = _check_zip(data, limits)
        if "word/document.xml" in archive.namelist():
            return Kind.DOCX, None
        raise UnprocessableDocument(f"a ZIP archive that is not a DOCX document (supported: {SUPPORTED})")
    text = _decode(data)
    if not text.strip():
        raise UnprocessableDocument("document holds only whitespace")
    head = text[:4096]
    if _HTML.match(head.encode("utf-8", "ignore")) or len(_HTML_TAGS.findall(head)) >= 3:
        return Kind.HTML, text
    first_line = text.lstrip().split("\n", 1)[0]
    if len(_MARKDOWN.findall(text[:20000])) >= 2 or re.match(r"#{1,6}\s+\S", first_line):
        return Kind.MARKDOWN, text
    return Kind.TEXT, text
