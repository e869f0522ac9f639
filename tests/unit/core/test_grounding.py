"""The grounding rules: sentences, best evidence, the supported flag, strict and extractive answers."""

from __future__ import annotations

import numpy as np
import pytest

from rag.core import grounding as g
from rag.core.prompts import Source

SOURCES = [
    Source(
        1,
        11,
        "d1",
        "Vitamin D",
        1,
        "Sunlight on the skin makes vitamin D. It helps absorb 3.5 mg of calcium.",
    ),
    Source(2, 22, "d2", "Sleep", None, "Deep sleep consolidates memories. Adults need seven hours!"),
]


def texts(text: str) -> list[str]:
    return [text[s.start : s.end] for s in g.sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Vitamin D helps bones [1]. Sleep helps memory [2].",
            ["Vitamin D helps bones [1].", "Sleep helps memory [2]."],
        ),
        # a marker after the full stop stays with its sentence, also when it stands alone
        ("Vitamin D helps bones. [1] Sleep helps. [2]", ["Vitamin D helps bones. [1]", "Sleep helps. [2]"]),
        ("It takes 3.5 mg daily. e.g. more in winter.", ["It takes 3.5 mg daily. e.g. more in winter."]),
        ("First point\nSecond point", ["First point", "Second point"]),
        ("  [1] ", []),
        ("Unfinished sentence without a stop", ["Unfinished sentence without a stop"]),
    ],
)
def test_sentence_spans(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


def test_evidence_is_every_source_sentence_at_its_span() -> None:
    candidates = g.evidence(SOURCES)
    assert [c.text for c in candidates] == [
        "Sunlight on the skin makes vitamin D.",
        "It helps absorb 3.5 mg of calcium.",
        "Deep sleep consolidates memories.",
        "Adults need seven hours!",
    ]
    for c in candidates:
        citation = c.citation(0.7)
        assert SOURCES[citation.number - 1].text[citation.quote_start : citation.quote_end] == citation.quote
        assert citation.support == pytest.approx(0.7)


def test_each_sentence_takes_its_best_evidence_and_is_supported_only_at_the_threshold() -> None:
    answer = "Skin makes vitamin D [2]. The moon is made of cheese [1]."
    spans = g.sentence_spans(answer)
    candidates = g.evidence(SOURCES)
    scores = np.array([[0.9, 0.2, 0.1, 0.0], [0.3, 0.49, 0.1, 0.2]], dtype=np.float32)
    first, second = g.grade(answer, spans, candidates, scores, threshold=0.5)
    # The quote is the best supporting sentence, whatever source the marker named.
    assert first.supported and first.evidence is not None and first.evidence.number == 1
    assert first.evidence.quote == "Sunlight on the skin makes vitamin D."
    assert first.support == pytest.approx(0.9)
    assert not second.supported and second.support == pytest.approx(0.49)
    assert second.evidence is not None and second.evidence.quote == "It helps absorb 3.5 mg of calcium."
    grounding = g.Grounding(answer, [first, second], False, 0, 0.5, "v")
    assert grounding.grounded_fraction == pytest.approx(0.5)
    # Only the supported sentence cites: an unsupported one is never presented as cited.
    assert [c.quote for c in grounding.citations] == ["Sunlight on the skin makes vitamin D."]


def test_keep_supported_rebuilds_the_answer_from_supported_sentences() -> None:
    answer = "Skin makes vitamin D [1]. The moon is cheese [1]. Adults sleep seven hours [2]."
    spans = g.sentence_spans(answer)
    scores = np.array([[0.9, 0, 0, 0], [0.1, 0.1, 0.1, 0.1], [0, 0, 0, 0.8]], dtype=np.float32)
    graded = g.grade(answer, spans, g.evidence(SOURCES), scores, threshold=0.5)
    text, kept = g.keep_supported(graded)
    assert text == "Skin makes vitamin D [1]. Adults sleep seven hours [2]."
    assert [text[s.start : s.end] for s in kept] == [s.text for s in kept]
    assert all(s.supported for s in kept) and "cheese" not in text


def test_extractive_quotes_the_most_relevant_sentences_verbatim_in_source_order() -> None:
    candidates = g.evidence(SOURCES)
    text, quoted = g.extractive(candidates, np.array([0.6, 0.1, 0.2, 0.9], dtype=np.float32), count=2)
    assert text == '"Sunlight on the skin makes vitamin D." [1] "Adults need seven hours!" [2]'
    assert [(s.supported, s.support) for s in quoted] == [(True, 1.0), (True, 1.0)]
    assert [text[s.start : s.end] for s in quoted] == [s.text for s in quoted]
    assert [s.evidence.quote for s in quoted if s.evidence] == [candidates[0].text, candidates[3].text]
    assert g.extractive([], np.zeros(0, np.float32)) == ("", [])


def test_claim_text_drops_markers() -> None:
    assert g.claim_text("Skin makes vitamin D [1] [2].") == "Skin makes vitamin D."


def test_word_overlap_counts_the_claims_content_words_found_in_the_premise() -> None:
    assert g.word_overlap("The statins lower cholesterol", "Cholesterol fell with statins.") == pytest.approx(
        2 / 3
    )
    assert g.word_overlap("the of and", "anything") == 0.0
    assert g.word_overlap("Coffee", "Tea is drunk.") == 0.0
