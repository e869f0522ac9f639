"""Judging a reranker: it reorders only the first ``depth`` candidates, metrics per document."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from rag.training.candidates import Candidate, RankedCandidates
from rag.training.evaluation import PairScorer, compare, reranked_run, similarity_scorer


def _ranked(key: str, docs: Sequence[str], grades: dict[str, int]) -> RankedCandidates:
    return RankedCandidates(
        key, f"query {key}", grades, tuple(Candidate(n, d, d) for n, d in enumerate(docs))
    )


def _prefers(doc: str) -> PairScorer:
    def score(pairs: Sequence[tuple[str, str]]) -> NDArray[np.float32]:
        return np.array([1.0 if text == doc else 0.0 for _, text in pairs], dtype=np.float32)

    return score


def test_a_scorer_that_finds_the_relevant_document_lifts_it_to_the_top() -> None:
    lists = [_ranked("q", ["x", "y", "rel", "z"], {"rel": 1})]
    result = compare(lists, _prefers("rel"), depth=4)
    assert result.hybrid["mrr@10"] == pytest.approx(1 / 3)
    assert result.reranked["mrr@10"] == 1.0
    assert result.gain > 0
    assert result.queries == 1


def test_candidates_below_the_depth_keep_their_place_behind_the_reranked_ones() -> None:
    lists = [_ranked("q", ["a", "b", "c", "rel"], {"rel": 1})]
    run = reranked_run(lists, _prefers("rel"), depth=2)
    assert [doc for doc, _ in run["q"]] == ["a", "b", "c", "rel"]
    run = reranked_run(lists, _prefers("b"), depth=2)
    assert [doc for doc, _ in run["q"]] == ["b", "a", "c", "rel"]


def test_metrics_name_the_modes_and_the_gain() -> None:
    lists = [_ranked("q", ["x", "rel"], {"rel": 1})]
    metrics = compare(lists, _prefers("rel"), depth=2).as_metrics("heldback_")
    assert metrics["heldback_reranked_ndcg_at_10"] == 1.0
    assert metrics["heldback_ndcg_at_10_gain"] == pytest.approx(1.0 - metrics["heldback_hybrid_ndcg_at_10"])


def test_an_embedder_judges_by_cosine_and_encodes_each_text_once() -> None:
    seen: list[list[str]] = []
    space = {"q": [1.0, 0.0], "near": [2.0, 0.1], "far": [0.0, 1.0]}

    def encode(texts: Sequence[str]) -> NDArray[np.float32]:
        seen.append(list(texts))
        return np.array([space[t] for t in texts], dtype=np.float32)

    scores = similarity_scorer(encode)([("q", "far"), ("q", "near"), ("q", "near")])
    assert seen == [["q", "far", "near"]]
    assert scores[1] == pytest.approx(scores[2]) and scores[1] > 0.99 and abs(float(scores[0])) < 1e-6
    assert similarity_scorer(encode)([]).shape == (0,)
