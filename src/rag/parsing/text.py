"""Plain text: paragraphs are separated by blank lines."""

from __future__ import annotations

import re

from rag.core.documents import ParsedDocument
from rag.parsing.builder import DocumentBuilder
from rag.parsing.sniff import Kind

_BLANK = re.compile(r"\n\s*\n")


def parse_text(text: str, *, filename: str = "") -> ParsedDocument:
    builder = DocumentBuilder(Kind.TEXT.value)
    for paragraph in _BLANK.split(text.replace("\r\n", "\n")):
        builder.paragraph(paragraph)
    return builder.build(title=None, filename=filename)
