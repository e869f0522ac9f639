from __future__ import annotations

import itertools

import pytest

from rag.core.chunking import ChunkingOptions, chunk_document
from rag.core.documents import Block, ParsedDocument
from rag.core.errors import InvalidInput


def words(text: str) -> int:
    return len(text.split())


def doc_from(
    sections: list[tuple[str | None, list[str]]], page_of: dict[int, int] | None = None
) -> ParsedDocument:
    text, blocks = "", []
    for heading, paragraphs in sections:
        if heading:
            blocks.append(Block(heading, len(text), heading=heading, is_heading=True))
            text += heading + "\n\n"
        for paragraph in paragraphs:
            page = (page_of or {}).get(len(blocks))
            blocks.append(Block(paragraph, len(text), heading=heading, page=page))
            text += paragraph + "\n\n"
    return ParsedDocument(title="t", text=text, blocks=tuple(blocks), mime_type="text/plain")


def sentence(i: int, n: int = 9) -> str:
    return " ".join(f"w{i}x{j}" for j in range(n)) + "."


def test_chunks_are_exact_slices_within_the_limit_and_ordered() -> None:
    paragraphs = [" ".join(sentence(p * 10 + s) for s in range(5)) for p in range(6)]
    doc = doc_from([("Intro", paragraphs)])
    chunks = chunk_document(doc, words, ChunkingOptions(chunk_tokens=40, overlap_tokens=10))
    assert len(chunks) > 3
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal
        assert doc.text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.token_count <= 40
        assert chunk.heading == "Intro"
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts)
    # Every sentence is in some chunk: nothing is dropped.
    for paragraph in paragraphs:
        for s in paragraph.split(". "):
            assert any(s.rstrip(".") in c.text for c in chunks)


def test_overlap_repeats_trailing_sentences() -> None:
    doc = doc_from([(None, [" ".join(sentence(i) for i in range(12))])])
    chunks = chunk_document(doc, words, ChunkingOptions(chunk_tokens=30, overlap_tokens=10))
    assert len(chunks) >= 3
    for before, after in itertools.pairwise(chunks):
        assert after.char_start < before.char_end  # they overlap
        assert after.char_start > before.char_start


def test_no_chunk_crosses_a_heading() -> None:
    doc = doc_from([("A", [sentence(1), sentence(2)]), ("B", [sentence(3)])])
    chunks = chunk_document(doc, words, ChunkingOptions(chunk_tokens=200, overlap_tokens=0))
    assert [c.heading for c in chunks] == ["A", "B"]
    assert "w3x0" not in chunks[0].text and "w1x0" not in chunks[1].text


def test_an_overlong_sentence_is_split_at_words() -> None:
    long = " ".join(f"tok{i}" for i in range(100))
    doc = doc_from([(None, [long])])
    chunks = chunk_document(doc, words, ChunkingOptions(chunk_tokens=30, overlap_tokens=0))
    assert all(c.token_count <= 30 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == long.split()


def test_page_of_first_unit_is_kept() -> None:
    doc = doc_from([(None, [sentence(1), sentence(2)])], page_of={0: 1, 1: 2})
    chunks = chunk_document(doc, words, ChunkingOptions(chunk_tokens=16, overlap_tokens=0))
    assert [c.page for c in chunks] == [1, 2]


def test_empty_document_has_no_chunks() -> None:
    assert chunk_document(doc_from([(None, ["   "])]), words) == []


@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (100, 60), (100, -1)])
def test_bad_options_name_the_field(size: int, overlap: int) -> None:
    with pytest.raises(InvalidInput, match=r"chunk_tokens|overlap_tokens"):
        ChunkingOptions(chunk_tokens=size, overlap_tokens=overlap)


@pytest.mark.parametrize(
    "paragraph",
    [
        "a" * 2_000_000,  # one "word" of two megabytes: one [UNK] token for WordPiece
        "word " * 400_000,  # one "sentence" of two megabytes
    ],
    ids=["huge-word", "huge-sentence"],
)
def test_huge_pieces_never_reach_the_tokenizer_whole_and_chunks_stay_small(paragraph: str) -> None:
    longest: list[int] = [0]

    def one_token_per_word(text: str) -> int:  # like [UNK]: a long word costs one token
        longest[0] = max(longest[0], len(text))
        return max(1, len(text.split()))

    doc = doc_from([(None, [paragraph])])
    options = ChunkingOptions(chunk_tokens=64, overlap_tokens=8)
    chunks = chunk_document(doc, one_token_per_word, options)
    limit_chars = 64 * 16
    assert chunks
    assert longest[0] <= limit_chars
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.char_start : chunk.char_end]
        assert len(chunk.text) <= limit_chars
    covered = sum(len(c.text.replace(" ", "")) for c in chunks)
    assert covered >= len(paragraph.replace(" ", ""))  # nothing dropped (overlap may repeat)
