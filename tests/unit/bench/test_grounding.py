"""bench.grounding: claims loading, gold matching and the per-row metrics, on plain data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import pytest

from bench import grounding
from bench.grounding import (
    ROWS,
    Answer,
    Cited,
    gold_labels,
    parse_rows,
    pick,
    row_metrics,
    same_sentence,
    table_row,
)
from rag.proto.rag.v1 import common_pb2, generation_pb2
from rag.training.claims import Claim, Rationale, parse_claims

SUPPORTED = "Policies requiring discontinuation of methadone in 32% of all programs contradict it."
CONTRADICTING = "Of the 32,441 appendix samples 16 were positive for abnormal PrP."


def line(claim_id: str, evidence: list[dict[str, object]]) -> str:
    return json.dumps(
        {"id": claim_id, "claim": f"claim {claim_id}", "cited_doc_ids": ["1"], "evidence": evidence}
    )


def claim(
    claim_id: str = "c1", rationales: tuple[Rationale, ...] = (Rationale("d1", "SUPPORT", (SUPPORTED,)),)
) -> Claim:
    return Claim(claim_id, f"claim {claim_id}", rationales)


def answer(
    c: Claim, *cited: Cited, grounded: float | None = 1.0, extractive: bool = False, seconds: float = 1.0
) -> Answer:
    return Answer(c, "text", cited, grounded, extractive, seconds)


def test_only_claims_with_a_gold_rationale_are_kept_unless_all_claims() -> None:
    lines = [
        line("1", []),
        "",
        line("2", [{"doc_id": 13734012, "label": "contradict", "sentences": [{"index": 4, "text": "A b."}]}]),
        line("3", [{"doc_id": "7", "label": "SUPPORT", "sentences": []}]),
    ]

    kept = parse_claims(lines)
    everything = parse_claims(lines, all_claims=True)

    assert [c.id for c in kept] == ["2"]
    assert kept[0].evidence == (Rationale("13734012", "CONTRADICT", ("A b.",)),)
    assert [c.id for c in everything] == ["1", "2", "3"]
    assert everything[2].evidence == ()


def test_pick_draws_a_seeded_subset_and_keeps_all_without_a_limit() -> None:
    claims = [claim(str(n)) for n in range(50)]

    first, again, other = pick(claims, 10, 7), pick(claims, 10, 7), pick(claims, 10, 8)

    assert first == again
    assert first != other
    assert len(first) == 10 and len({c.id for c in first}) == 10
    assert first != claims[:10]
    assert pick(claims, None, 7) == claims
    assert pick(claims, 99, 7) == claims


def test_sentences_match_exactly_after_whitespace_or_by_containment_when_long() -> None:
    assert same_sentence(
        "  Of the 32,441\nappendix   samples 16 were positive for abnormal PrP. ", CONTRADICTING
    )
    assert same_sentence(f"RESULTS {CONTRADICTING}", CONTRADICTING)
    assert same_sentence("appendix samples 16 were positive", CONTRADICTING)
    assert same_sentence("Short one.", "Short one.")
    assert not same_sentence("Short one.", "Short one. And more besides this.")
    assert not same_sentence("", CONTRADICTING)
    assert not same_sentence("Something else entirely, at length.", CONTRADICTING)


def test_a_citation_is_gold_only_in_the_evidence_document_and_carries_the_label() -> None:
    c = claim(
        rationales=(
            Rationale("d1", "SUPPORT", (SUPPORTED,)),
            Rationale("d2", "CONTRADICT", (CONTRADICTING,)),
        )
    )

    assert gold_labels(c, Cited("d1", SUPPORTED)) == {"SUPPORT"}
    assert gold_labels(c, Cited("d2", CONTRADICTING)) == {"CONTRADICT"}
    assert gold_labels(c, Cited("d2", SUPPORTED)) == set()
    assert gold_labels(c, Cited("d1", "A sentence of the abstract that is not the rationale.")) == set()


def test_row_metrics_count_precision_recall_uncited_grounding_and_time() -> None:
    supported = claim("s")
    contradicted = claim("c", (Rationale("d2", "CONTRADICT", (CONTRADICTING,)),))
    ungold = claim("u", ())
    answers = [
        answer(supported, Cited("d1", SUPPORTED), Cited("d1", "Another sentence."), seconds=1.0),
        answer(contradicted, Cited("d9", CONTRADICTING), grounded=0.5, extractive=True, seconds=2.0),
        answer(ungold, grounded=None, extractive=True, seconds=6.0),
    ]

    m = row_metrics(answers)

    assert (m["citations"], m["gold_citations"], m["citation_precision"]) == (3, 1, pytest.approx(1 / 3))
    assert (m["claims_with_rationale"], m["claims_with_gold_citation"]) == (2, 1)
    assert m["claim_evidence_recall"] == 0.5
    assert (m["answers_without_citation"], m["no_citation_fraction"]) == (1, pytest.approx(1 / 3))
    assert m["answers_with_grounding"] == 2
    assert m["mean_grounded_fraction"] == 0.75
    assert (m["extractive_answers"], m["extractive_fraction"]) == (1, 0.5)
    assert (m["seconds_p50"], m["seconds_mean"]) == (2.0, 3.0)
    support, contradict = m["by_label"]["SUPPORT"], m["by_label"]["CONTRADICT"]
    assert (support["gold_citations"], support["claims"], support["claim_evidence_recall"]) == (1, 1, 1.0)
    assert (contradict["gold_citations"], contradict["claims"], contradict["claim_evidence_recall"]) == (
        0,
        1,
        0.0,
    )


def test_an_empty_row_has_no_ratios_and_renders_dashes() -> None:
    m = row_metrics([])

    assert m["citation_precision"] is None and m["claim_evidence_recall"] is None
    assert m["seconds_p50"] is None and m["mean_grounded_fraction"] is None
    assert table_row("strict", m)[:5] == ["strict", 0, "-", "-", "-"]


def test_table_row_shows_each_ratio_with_its_counts() -> None:
    m = row_metrics([answer(claim(), Cited("d1", SUPPORTED), Cited("d1", "Other."))])

    row = table_row("generated", m)

    assert row[2] == "0.500 (1/2)"
    assert row[3] == "1.000 (1/1)"
    assert row[4] == "0.000 (0/1)"


def test_rows_are_chosen_by_name() -> None:
    assert parse_rows("strict, quotes-only") == ["strict", "quotes-only"]
    assert list(ROWS) == ["generated", "strict", "quotes-only"]
    assert [(o.strict, o.quotes_only) for o in ROWS.values()] == [
        (False, False),
        (True, False),
        (False, True),
    ]
    with pytest.raises(SystemExit):
        parse_rows("strict,fast")
    with pytest.raises(SystemExit):
        parse_rows(" , ")


def test_ask_assembles_the_stream_and_maps_documents() -> None:
    sent: list[dict[str, Any]] = []
    R = generation_pb2.GenerateStreamResponse

    class Client:
        def ask(self, question: str, **options: Any) -> Iterator[generation_pb2.GenerateStreamResponse]:
            sent.append({"question": question, **options})
            yield R(token="Streamed ")
            yield R(token="text.")
            cited = common_pb2.Citation(document_id="uuid-1", quote=SUPPORTED)
            yield R(citations=generation_pb2.CitationList(citations=[cited]))
            yield R(
                grounding=generation_pb2.Grounding(answer="Final.", grounded_fraction=0.5, extractive=True)
            )
            yield R(summary=generation_pb2.GenerationSummary())

    c = claim()

    got = grounding.ask(cast(Any, Client()), c, ROWS["strict"], {"uuid-1": "d1"}, top_k=5, max_tokens=96)

    assert sent == [{"question": c.claim, "top_k": 5, "max_tokens": 96, "strict": True, "quotes_only": False}]
    assert got.text == "Final."
    assert got.citations == (Cited("d1", SUPPORTED),)
    assert (got.grounded_fraction, got.extractive) == (0.5, True)
    assert gold_labels(c, got.citations[0]) == {"SUPPORT"}
