"""Plain text: paragraphs are separated by blank lines."""

from __future__ import annotations

import re

from rag.core.documents import ParsedDocument
from rag.parsing.builder import DocumentBuilder
from rag.parsing.limits import ParseLimits
from rag.parsing.sniff import Kind

_BLANK = re.compile(r"\n\s*\n")


def parse_text(text: str, *, filename: str = "", limits: ParseLimits | None = None) -> ParsedDocument:
    limits = limits or ParseLimits()
    builder = DocumentBuilder(Kind.TEXT.value, max_chars=limits.max_chars)
    for paragraph in _BLANK.split(text.replace("\r\n", "\n")):
        builder.paragraph(paragraph)
    return builder.build(title=None, filename=filename)
