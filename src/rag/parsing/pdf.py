"""PDF through pypdf: text per page, page numbers kept for citations."""

from __future__ import annotations

import io
import logging
import re

from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError
from pypdf.generic import DictionaryObject

from rag.core.documents import ParsedDocument
from rag.core.errors import UnprocessableDocument
from rag.parsing.builder import DocumentBuilder
from rag.parsing.limits import ParseLimits
from rag.parsing.sniff import Kind

_BLANK = re.compile(r"\n\s*\n")
# pypdf logs every recoverable defect; the quarantine reason carries what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def parse_pdf(data: bytes, *, filename: str = "", limits: ParseLimits | None = None) -> ParsedDocument:
    limits = limits or ParseLimits()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UnprocessableDocument("encrypted PDF: upload it without a password")
        _check_pages(_declared_pages(reader), limits)  # before the page tree is walked
        pages = list(reader.pages)
    except UnprocessableDocument:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise UnprocessableDocument(f"damaged PDF: {exc}") from None
    if not pages:
        raise UnprocessableDocument("damaged PDF: no pages could be read")
    _check_pages(len(pages), limits)
    builder = DocumentBuilder(Kind.PDF.value, max_chars=limits.max_chars)
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
            raise UnprocessableDocument(f"damaged PDF: page {number} cannot be read ({exc})") from None
        for paragraph in _BLANK.split(text):
            builder.paragraph(paragraph, page=number)
    if not builder.blocks:
        raise UnprocessableDocument("PDF has no extractable text (scanned images need OCR first)")
    title = None
    try:
        title = reader.metadata.title if reader.metadata else None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError):
        title = None
    return builder.build(title=title, filename=filename)


def _declared_pages(reader: PdfReader) -> int:
    """The page count the page tree's root claims (0 when it claims none)."""
    try:
        pages = reader.root_object["/Pages"].get_object()
        count = pages.get("/Count", 0) if isinstance(pages, DictionaryObject) else 0
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError):
        return 0
    return count if isinstance(count, int) else 0


def _check_pages(pages: int, limits: ParseLimits) -> None:
    if pages > limits.max_pages:
        raise UnprocessableDocument(
            f"PDF has {pages} pages; the limit is {limits.max_pages} (PARSE_MAX_PAGES)"
        )
