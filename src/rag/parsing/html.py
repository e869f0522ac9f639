"""HTML through BeautifulSoup (lxml): headings, paragraphs, list items, table rows."""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag

from rag.core.documents import ParsedDocument
from rag.parsing.builder import DocumentBuilder
from rag.parsing.sniff import Kind

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = _HEADINGS | {"p", "li", "tr", "pre", "blockquote", "dd", "dt", "figcaption", "caption", "td", "th"}
_DROP = ("script", "style", "noscript", "template", "nav", "footer", "header", "aside", "form", "svg")


def parse_html(text: str, *, filename: str = "") -> ParsedDocument:
    soup = BeautifulSoup(text, "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if isinstance(title_tag, Tag) else None
    for tag in soup(list(_DROP)):
        tag.decompose()
    body = soup.body or soup
    builder = DocumentBuilder(Kind.HTML.value)
    found = False
    for element in body.find_all(list(_BLOCKS)):
        # Take the innermost blocks only (a <li> holding <p>s yields the paragraphs).
        if element.name not in _HEADINGS and element.find(
            list(_BLOCKS - {"td", "th"} if element.name == "tr" else _BLOCKS)
        ):
            continue
        if element.name in {"td", "th"} and element.find_parent("tr") is not None:
            continue
        found = True
        if element.name in _HEADINGS:
            builder.heading(int(element.name[1]), element.get_text(" ", strip=True))
        elif element.name == "tr":
            cells = [c.get_text(" ", strip=True) for c in element.find_all(["td", "th"])]
            builder.paragraph(" | ".join(c for c in cells if c))
        else:
            builder.paragraph(
                element.get_text(" ", strip=True) if element.name != "pre" else element.get_text()
            )
    if not found:
        builder.paragraph(body.get_text("\n", strip=True))
    return builder.build(title=title, filename=filename)
