from __future__ import annotations

from dataclasses import replace

import pytest

from rag.core.citations import extract_citations, verify
from rag.core.prompts import NO_ANSWER, Source, build_prompt

SOURCES = [
    Source(
        1,
        11,
        "d1",
        "Vitamin D",
        1,
        "Vitamin D helps absorb calcium. Sunlight on the skin produces vitamin D.",
    ),
    Source(2, 22, "d2", "Sleep", None, "Deep sleep consolidates memories. Adults need seven hours."),
]


def test_markers_become_verified_quotes() -> None:
    answer = "The skin makes vitamin D in sunlight [1]. Sleep helps memory [2]."
    citations = extract_citations(answer, SOURCES)
    assert [(c.number, c.chunk_id) for c in citations] == [(1, 11), (2, 22)]
    assert citations[0].quote == "Sunlight on the skin produces vitamin D."
    assert all(verify(c, SOURCES[c.number - 1].text) for c in citations)


def test_markers_naming_no_source_are_dropped() -> None:
    assert extract_citations("Something [7].", SOURCES) == []


def test_unmarked_answer_is_attributed_by_overlap() -> None:
    citations = extract_citations("Deep sleep consolidates memories.", SOURCES)
    assert [c.chunk_id for c in citations] == [22]


def test_unrelated_unmarked_answer_cites_nothing() -> None:
    assert extract_citations("Paris is the capital of France.", SOURCES) == []


def test_verify_rejects_a_quote_not_in_the_chunk() -> None:
    (citation,) = extract_citations("Vitamin D helps absorb calcium [1].", SOURCES)
    assert not verify(citation, "other text entirely")


@pytest.mark.parametrize(
    "answer",
    [
        "The skin makes vitamin D in sunlight [1]. Sleep helps memory [2].",  # markers, overlap
        "Nothing in common here [1] [2].",  # markers, no overlap: the first sentence is quoted
        "Adults need seven hours of sleep.",  # no markers: attributed by overlap
    ],
)
def test_every_quote_is_the_span_it_names_in_its_chunk(answer: str) -> None:
    citations = extract_citations(answer, SOURCES)
    assert citations
    for citation in citations:
        text = SOURCES[citation.number - 1].text
        assert citation.quote
        assert text[citation.quote_start : citation.quote_end] == citation.quote
        assert verify(citation, text)
        assert not verify(replace(citation, quote_start=citation.quote_start + 1), text)


def test_prompt_numbers_sources_and_ends_with_the_question() -> None:
    prompt = build_prompt("Why sleep?", SOURCES)
    assert "[1] (Vitamin D, page 1) Vitamin D helps" in prompt and "[2] (Sleep) Deep sleep" in prompt
    assert prompt.endswith("Question: Why sleep?\nAnswer:")
    assert NO_ANSWER
