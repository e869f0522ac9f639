from __future__ import annotations

import pytest

from rag.core.errors import UnprocessableDocument
from rag.parsing import Kind, parse, sniff
from tests.fixtures.corpus import POISON, make_pdf, mixed_corpus

CORPUS = mixed_corpus()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("notes.txt", Kind.TEXT),
        ("guide.md", Kind.MARKDOWN),
        ("page.html", Kind.HTML),
        ("bp.pdf", Kind.PDF),
        ("report.docx", Kind.DOCX),
        ("latin1.txt", Kind.TEXT),
    ],
)
def test_type_is_sniffed_from_content(name: str, kind: Kind) -> None:
    assert sniff(CORPUS[name])[0] is kind
    # The file name does not matter.
    assert parse(CORPUS[name], filename="upload.bin").mime_type == kind.value


def test_pdf_keeps_page_numbers_and_title() -> None:
    doc = parse(CORPUS["bp.pdf"])
    assert doc.title == "Blood pressure notes"
    pages = {b.page for b in doc.blocks}
    assert pages == {1, 2}
    assert any("Diuretics" in b.text and b.page == 2 for b in doc.blocks)


def test_markdown_headings_become_heading_paths() -> None:
    doc = parse(CORPUS["guide.md"])
    assert doc.title == "Sleep guide"
    block = next(b for b in doc.blocks if "consolidates" in b.text)
    assert block.heading == "Sleep guide > Why sleep matters"
    assert any(b.text == "Adults need 7 hours" for b in doc.blocks)


def test_html_drops_navigation_and_keeps_structure() -> None:
    doc = parse(CORPUS["page.html"])
    assert doc.title == "Exercise"
    assert "menu" not in doc.text
    assert any(b.text == "Walk daily" and b.heading == "Exercise" for b in doc.blocks)


def test_docx_headings_and_tables() -> None:
    doc = parse(CORPUS["report.docx"])
    assert doc.title == "Diabetes report"
    block = next(b for b in doc.blocks if "Fibre" in b.text)
    assert block.heading == "Diabetes report > Diet"
    assert any(b.text == "HbA1c | below 7%" for b in doc.blocks)


def test_latin1_text_is_decoded() -> None:
    assert "Caf\u00e9 cr\u00e8me" in parse(CORPUS["latin1.txt"]).text


def test_block_spans_index_into_the_text() -> None:
    for name in set(CORPUS) - POISON:
        doc = parse(CORPUS[name])
        for block in doc.blocks:
            assert doc.text[block.start : block.end] == block.text


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated.pdf", "damaged PDF|no extractable text"),
        ("bomb.docx", "zip bomb"),
        ("random.pdf", "binary content"),
        ("empty.txt", "empty document"),
    ],
)
def test_poison_is_rejected_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(UnprocessableDocument, match=reason):
        parse(CORPUS[name])


def test_encrypted_or_pageless_pdf_is_rejected() -> None:
    with pytest.raises(UnprocessableDocument):
        parse(b"%PDF-1.4\n%%EOF\n")
    assert parse(make_pdf([["Only page."]])).blocks[0].page == 1
