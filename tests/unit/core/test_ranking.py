from __future__ import annotations

from rag.core.ranking import reciprocal_rank_fusion


def test_items_ranked_well_in_both_lists_win() -> None:
    dense = ["a", "b", "c", "d"]
    lexical = ["c", "a", "e"]
    fused = reciprocal_rank_fusion([dense, lexical])
    assert [key for key, _ in fused][:2] == ["a", "c"]
    assert {key for key, _ in fused} == {"a", "b", "c", "d", "e"}
    score = dict(fused)
    assert abs(score["a"] - (1 / 61 + 1 / 62)) < 1e-12


def test_limit_and_stable_ties() -> None:
    fused = reciprocal_rank_fusion([["x", "y"], ["y", "x"]], limit=1)
    assert len(fused) == 1 and fused[0][0] == "x"


def test_one_list_keeps_its_order() -> None:
    assert [k for k, _ in reciprocal_rank_fusion([[3, 1, 2]])] == [3, 1, 2]
