"""Type sniffing on an upload's first bytes: linear time, bounded, and a reason for junk."""

from __future__ import annotations

import io
import zipfile

import pytest

import rag.parsing
from rag.core.errors import UnprocessableDocument
from rag.parsing import SNIFF_PREFIX_BYTES, Kind, parse, sniff_prefix
from tests.fixtures.corpus import mixed_corpus
from tests.fixtures.hostile import REGEX_BOMB_HTML, REGEX_BOMB_HTML_30, REGEX_BOMB_MARKDOWN

CORPUS = mixed_corpus()


# The old checks backtracked: 2 s for the 169-byte comment bomb (doubling with each comment:
# minutes for 30) and 3 s for the whitespace lines, on the API's event loop. The timeout only
# guards against a hang; the checks take milliseconds.
@pytest.mark.timeout(2)
@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (REGEX_BOMB_HTML, Kind.TEXT),
        (REGEX_BOMB_HTML_30, Kind.TEXT),
        (b"x\n" + REGEX_BOMB_MARKDOWN, Kind.TEXT),
        (b"<!---->" * 9000 + b"<html><body>x", Kind.HTML),  # 63 KB of comments, then HTML
        (b"<p " * 20_000, Kind.TEXT),  # tags that never close
        (b"- a\n" + b"|" * 60_000 + b"\n- b\n", Kind.MARKDOWN),
    ],
)
def test_hostile_prefixes_are_classified_at_once(data: bytes, kind: Kind) -> None:
    assert sniff_prefix(data) is kind


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"<!-- a --> <!--b-->\n<!DOCTYPE  html><p>x", Kind.HTML),
        (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/>', Kind.HTML),
        (b"<div>one</div><span>two</span><a href='#'>three</a>", Kind.HTML),
        (b"# Title\n\ntext", Kind.MARKDOWN),
        (b"intro\n\n| a | b |\n|---|---|\n", Kind.MARKDOWN),
        (b"\xef\xbb\xbf<html><body>bom</body></html>", Kind.HTML),
        ("# Titre\n\ncaf\u00e9".encode("utf-16"), Kind.MARKDOWN),
        ("caf\u00e9 cr\u00e8me".encode("latin-1"), Kind.TEXT),
        (b"%PDF-1.7\n\x00\x01binary", Kind.PDF),
    ],
)
def test_prefix_kinds(data: bytes, kind: Kind) -> None:
    assert sniff_prefix(data) is kind


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty document"),
        (b" \n\t\n", "only whitespace"),
        (bytes(range(256)) * 4, "binary content"),
        (CORPUS["random.pdf"], "binary content"),
    ],
)
def test_junk_is_refused_with_what_is_supported(data: bytes, reason: str) -> None:
    with pytest.raises(UnprocessableDocument, match=f"{reason}.*PDF, DOCX, HTML, Markdown or plain text"):
        sniff_prefix(data)


def test_only_the_prefix_is_read() -> None:
    text = b"plain words\n" * (SNIFF_PREFIX_BYTES // 12 + 1)
    assert sniff_prefix(text + b"\x00" * 1000) is Kind.TEXT  # the NULs lie past the prefix
    with pytest.raises(UnprocessableDocument, match="binary content"):  # the worker reads it all
        parse(text + b"\x00" * 1000)
    with pytest.raises(UnprocessableDocument, match="starts with 64 KiB of whitespace"):
        sniff_prefix(b" \n" * SNIFF_PREFIX_BYTES)
    assert rag.parsing.sniff_prefix is sniff_prefix


def test_a_zip_is_a_docx_when_its_first_entries_say_so() -> None:
    docx = CORPUS["report.docx"]
    assert sniff_prefix(docx[:1024]) is Kind.DOCX
    assert sniff_prefix(CORPUS["bomb.docx"][:SNIFF_PREFIX_BYTES]) is Kind.DOCX  # provisionally
    with pytest.raises(UnprocessableDocument, match="zip bomb"):  # the worker checks it all
        parse(CORPUS["bomb.docx"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("data.csv", "a,b\n")
    with pytest.raises(UnprocessableDocument, match="ZIP archive that is not a DOCX"):
        sniff_prefix(out.getvalue())
