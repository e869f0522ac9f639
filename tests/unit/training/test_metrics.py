"""The product's ranking metrics against values worked out by hand (trec_eval's definitions)."""

from __future__ import annotations

import math

import pytest

from rag.training.metrics import documents_from_chunks, evaluate, mrr_at_k, ndcg_at_k, recall_at_k


def test_ndcg_of_the_ideal_ranking_is_one_and_of_no_hit_zero() -> None:
    relevant = {"a": 2, "b": 1}
    assert ndcg_at_k(["a", "b", "x"], relevant, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], relevant, 10) == 0.0


def test_ndcg_uses_linear_gain_and_log2_discount() -> None:
    relevant = {"a": 2, "b": 1}
    # b at rank 1, a at rank 3: DCG = 1/log2(2) + 2/log2(4); ideal = 2/log2(2) + 1/log2(3).
    expected = (1 + 2 / 2) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "x", "a"], relevant, 10) == pytest.approx(expected)
    # The cut-off applies to the ranking and to the ideal ordering.
    assert ndcg_at_k(["b", "x", "a"], relevant, 1) == pytest.approx(1 / 2)


def test_recall_counts_only_positive_judgements() -> None:
    relevant = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["c", "a", "x"], relevant, 3) == pytest.approx(0.5)
    assert recall_at_k(["x", "a"], relevant, 1) == 0.0
    assert recall_at_k(["a"], {"c": 0}, 10) == 0.0


def test_mrr_is_the_reciprocal_of_the_first_relevant_rank_within_k() -> None:
    relevant = {"a": 1}
    assert mrr_at_k(["x", "y", "a"], relevant, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "a"], relevant, 2) == 0.0


def test_evaluate_averages_over_judged_queries_and_breaks_ties_like_trec_eval() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}  # q3 has nothing relevant: skipped
    run = {
        "q1": [("a", 2.0), ("x", 1.0)],
        # Equal scores: trec_eval orders by document id descending, so "x" comes before "b".
        "q2": [("b", 1.0), ("x", 1.0)],
    }
    result = evaluate(run, qrels, ndcg_k=10, recall_k=1, mrr_k=10)
    assert result["queries"] == 2
    assert result["mrr@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert result["recall@1"] == pytest.approx(0.5)
    assert result["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_evaluate_scores_a_missing_query_as_zero() -> None:
    result = evaluate({}, {"q1": {"a": 1}})
    assert result == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "queries": 1.0}


def test_documents_from_chunks_keeps_each_document_at_its_best_chunk() -> None:
    ranking = documents_from_chunks([("d1", 0.9), ("d2", 0.8), ("d1", 0.7), ("d3", 0.1)])
    assert [doc for doc, _ in ranking] == ["d1", "d2", "d3"]
    assert [score for _, score in ranking] == sorted((score for _, score in ranking), reverse=True)
