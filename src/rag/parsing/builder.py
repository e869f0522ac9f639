"""Accumulate extracted blocks into one text with exact spans."""

from __future__ import annotations

import re

from rag.core.documents import MAX_TITLE_CHARS, Block, ParsedDocument
from rag.core.errors import UnprocessableDocument

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")


def clean(text: str) -> str:
    lines = [
        _SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    return "\n".join(line for line in lines if line)


class DocumentBuilder:
    """Blocks in document order; past ``max_chars`` of text, :class:`UnprocessableDocument`."""

    def __init__(self, mime_type: str, *, max_chars: int | None = None) -> None:
        self.mime_type = mime_type
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.blocks: list[Block] = []
        self.length = 0
        self.headings: list[tuple[int, str]] = []
        self.title: str | None = None

    @property
    def heading_path(self) -> str | None:
        return " > ".join(text for _, text in self.headings) or None

    def _append(self, text: str) -> int:
        if self.max_chars is not None and self.length + 2 + len(text) > self.max_chars:
            raise UnprocessableDocument(
                f"document has more than {self.max_chars} characters of text (PARSE_MAX_CHARS)"
            )
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        return start

    def heading(self, level: int, text: str, page: int | None = None) -> None:
        text = clean(text).replace("\n", " ")
        if not text:
            return
        self.headings = [(lvl, t) for lvl, t in self.headings if lvl < level] + [(level, text)]
        start = self._append(text)
        self.blocks.append(Block(text, start, heading=self.heading_path, page=page, is_heading=True))
        if self.title is None and level <= 2:
            self.title = text

    def paragraph(self, text: str, page: int | None = None) -> None:
        text = clean(text)
        if not text:
            return
        start = self._append(text)
        self.blocks.append(Block(text, start, heading=self.heading_path, page=page))

    def build(self, *, title: str | None, filename: str) -> ParsedDocument:
        text = "".join(self.parts)
        first_line = next((b.text.split("\n", 1)[0] for b in self.blocks), "")
        best = (title or "").strip() or self.title or first_line[:200] or filename or "untitled"
        return ParsedDocument(
            title=best[:MAX_TITLE_CHARS], text=text, blocks=tuple(self.blocks), mime_type=self.mime_type
        )
