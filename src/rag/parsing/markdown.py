"""Markdown through markdown-it-py's token stream: headings, paragraphs, lists, code, tables."""

from __future__ import annotations

from markdown_it import MarkdownIt

from rag.core.documents import ParsedDocument
from rag.parsing.builder import DocumentBuilder
from rag.parsing.limits import ParseLimits
from rag.parsing.sniff import Kind


def parse_markdown(text: str, *, filename: str = "", limits: ParseLimits | None = None) -> ParsedDocument:
    limits = limits or ParseLimits()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    builder = DocumentBuilder(Kind.MARKDOWN.value, max_chars=limits.max_chars)
    heading_level: int | None = None
    row: list[str] | None = None
    for token in tokens:
        if token.type == "heading_open":
            heading_level = int(token.tag[1])
        elif token.type == "heading_close":
            heading_level = None
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            builder.paragraph(" | ".join(row))
            row = None
        elif token.type == "inline":
            content = "".join(
                child.content for child in token.children or [] if child.type in {"text", "code_inline"}
            )
            content = content or token.content
            if heading_level is not None:
                builder.heading(heading_level, content)
            elif row is not None:
                row.append(content.strip())
            else:
                builder.paragraph(content)
        elif token.type in {"fence", "code_block"}:
            builder.paragraph(token.content)
    return builder.build(title=None, filename=filename)
