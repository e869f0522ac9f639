"""Text extraction for every supported format, each with a real parsing library.

``parse(data)`` sniffs the type from the bytes (never the file name), extracts text with
page numbers (PDF) and heading paths (Markdown, HTML, DOCX), and raises
:class:`~rag.core.errors.UnprocessableDocument` with a quarantine reason for anything it cannot
read: empty files, binary junk, damaged PDFs, archives that expand too far, output past
:class:`ParseLimits`. Parsing untrusted bytes belongs in a worker process
(:mod:`rag.parsing.isolation`); the API only calls :func:`sniff_prefix` on an upload's first bytes.

It may import the core and :mod:`rag.settings` (and :mod:`rag.models` to count tokens); no
adapter, no service.
"""

from __future__ import annotations

from rag.core.documents import ParsedDocument
from rag.parsing.limits import ParseLimits
from rag.parsing.sniff import SNIFF_PREFIX_BYTES, Kind, sniff, sniff_prefix


def parse(data: bytes, *, filename: str = "", limits: ParseLimits | None = None) -> ParsedDocument:
    limits = limits or ParseLimits()
    kind, text = sniff(data, limits)
    if kind is Kind.PDF:
        from rag.parsing.pdf import parse_pdf

        return parse_pdf(data, filename=filename, limits=limits)
    if kind is Kind.DOCX:
        from rag.parsing.docx import parse_docx

        return parse_docx(data, filename=filename, limits=limits)
    assert text is not None
    if kind is Kind.HTML:
        from rag.parsing.html import parse_html

        return parse_html(text, filename=filename, limits=limits)
    if kind is Kind.MARKDOWN:
        from rag.parsing.markdown import parse_markdown

        return parse_markdown(text, filename=filename, limits=limits)
    from rag.parsing.text import parse_text

    return parse_text(text, filename=filename, limits=limits)


__all__ = ["SNIFF_PREFIX_BYTES", "Kind", "ParseLimits", "parse", "sniff", "sniff_prefix"]
