"""Mining: candidates in the search's order, positives from the labels, hard negatives from the top."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.training.candidates import Candidate, RankedCandidates, hybrid_run, mine, pairs, triplets


@dataclass(frozen=True)
class Query:
    key: str
    text: str
    grades: dict[str, int] = field(default_factory=dict)


def _chunks(*docs: str) -> tuple[Candidate, ...]:
    return tuple(Candidate(n, doc, f"text of {doc} #{n}") for n, doc in enumerate(docs))


def test_mine_searches_each_query_once_at_the_depth_asked_and_keeps_its_order() -> None:
    asked: list[tuple[str, int]] = []

    def search(query: str, depth: int) -> Sequence[Candidate]:
        asked.append((query, depth))
        return _chunks("d2", "d1")

    lists = mine([Query("1", "first", {"d1": 1}), Query("2", "second")], search, depth=7, workers=2)
    assert sorted(asked) == [("first", 7), ("second", 7)]
    assert [r.key for r in lists] == ["1", "2"]
    assert [c.document_id for c in lists[0].candidates] == ["d2", "d1"]
    assert lists[0].grades == {"d1": 1}


def test_pairs_take_every_relevant_chunk_and_negatives_only_from_the_top_unlabelled() -> None:
    ranked = RankedCandidates("q", "query", {"d1": 2, "d3": 0}, _chunks("d0", "d1", "d3", "d1", "d4", "d5"))
    out = pairs([ranked], negatives=10, negative_depth=3, seed=1)
    positives = sorted(p.passage for p in out if p.label == 1.0)
    negatives = sorted(p.passage for p in out if p.label == 0.0)
    assert positives == ["text of d1 #1", "text of d1 #3"]
    # Depth 3: d0 and d3 (graded 0) are negatives, d4 and d5 are too deep.
    assert negatives == ["text of d0 #0", "text of d3 #2"]
    assert {p.query for p in out} == {"query"}


def test_pairs_draw_at_most_the_negatives_asked_and_skip_queries_without_a_relevant_candidate() -> None:
    ranked = RankedCandidates("q", "query", {"d9": 1}, _chunks("d0", "d1", "d2", "d9"))
    assert len([p for p in pairs([ranked], negatives=2, negative_depth=10, seed=1) if p.label == 0.0]) == 2
    missed = RankedCandidates("m", "missed", {"zz": 1}, _chunks("d0", "d1"))
    assert pairs([missed], negatives=2, negative_depth=10, seed=1) == []


def test_the_hybrid_run_ranks_each_document_at_its_best_chunk() -> None:
    ranked = RankedCandidates("q", "query", {}, _chunks("a", "b", "a", "c"))
    assert [doc for doc, _ in hybrid_run([ranked])["q"]] == ["a", "b", "c"]


def test_triplets_pair_each_relevant_documents_best_chunk_with_top_unlabelled_negatives() -> None:
    ranked = RankedCandidates("q", "query", {"d1": 2, "d3": 0}, _chunks("d0", "d1", "d3", "d1", "d4", "d5"))
    out = triplets([ranked], negatives=10, negative_depth=3, seed=1)
    # d1's best chunk (#1) only, not its second one; negatives from the first 3: d0 and d3.
    assert {t.positive for t in out} == {"text of d1 #1"}
    assert sorted(t.negative for t in out) == ["text of d0 #0", "text of d3 #2"]
    assert {t.query for t in out} == {"query"}
    assert len(triplets([ranked], negatives=1, negative_depth=3, seed=1)) == 1
    missed = RankedCandidates("m", "missed", {"zz": 1}, _chunks("d0", "d1"))
    assert triplets([missed], negatives=2, negative_depth=10, seed=1) == []
