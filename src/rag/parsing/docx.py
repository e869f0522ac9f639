"""DOCX through python-docx: body paragraphs and tables in order, headings from styles."""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree.ElementTree import ParseError

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from rag.core.documents import ParsedDocument
from rag.core.errors import UnprocessableDocument
from rag.parsing.builder import DocumentBuilder
from rag.parsing.limits import ParseLimits
from rag.parsing.sniff import Kind, check_zip

_HEADING = re.compile(r"^Heading (\d)$")


def parse_docx(data: bytes, *, filename: str = "", limits: ParseLimits | None = None) -> ParsedDocument:
    limits = limits or ParseLimits()
    check_zip(data, limits)  # before python-docx inflates anything
    try:
        document = docx.Document(io.BytesIO(data))
    except MemoryError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, ParseError, OSError) as exc:
        raise UnprocessableDocument(f"damaged DOCX: {exc}") from None
    except Exception as exc:  # python-docx raises assorted lxml errors on broken XML
        raise UnprocessableDocument(f"damaged DOCX: {type(exc).__name__}: {exc}") from None
    builder = DocumentBuilder(Kind.DOCX.value, max_chars=limits.max_chars)
    title = None
    # Style names by style id: resolving a paragraph's style searches the styles part each
    # time (most of the parse time of a long document).
    styles: dict[str | None, str] = {}
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            style_id = item._p.style
            if style_id not in styles:
                styles[style_id] = (item.style.name if item.style is not None else "") or ""
            style = styles[style_id]
            match = _HEADING.match(style)
            if style == "Title":
                title = item.text.strip() or title
                builder.heading(0, item.text)
            elif match:
                builder.heading(int(match.group(1)), item.text)
            else:
                builder.paragraph(item.text)
        elif isinstance(item, Table):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = cell.text.strip()
                    if text and (not cells or cells[-1] != text):  # merged cells repeat
                        cells.append(text)
                builder.paragraph(" | ".join(cells))
    core_title = (document.core_properties.title or "").strip()
    return builder.build(title=core_title or title, filename=filename)
