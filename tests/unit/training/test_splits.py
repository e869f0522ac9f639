"""Held-back queries and folds: fixed by the seed and the key alone."""

from __future__ import annotations

import pytest

from rag.core.errors import InvalidInput
from rag.training.splits import folds, held_back

KEYS = [f"q{i}" for i in range(200)]


def test_held_back_takes_about_the_fraction_and_the_two_sides_are_disjoint() -> None:
    train, held = held_back(KEYS, 0.2, seed=1)
    assert set(train).isdisjoint(held)
    assert set(train) | set(held) == set(KEYS)
    assert 25 <= len(held) <= 55


def test_a_held_back_query_stays_held_back_when_labels_grow() -> None:
    _, held = held_back(KEYS[:100], 0.2, seed=1)
    _, held_later = held_back(KEYS, 0.2, seed=1)
    assert set(held) <= set(held_later)
    assert held_back(list(reversed(KEYS)), 0.2, seed=1)[1] == held_later


def test_another_seed_holds_back_other_queries() -> None:
    assert held_back(KEYS, 0.2, seed=1)[1] != held_back(KEYS, 0.2, seed=2)[1]


def test_two_queries_give_one_to_each_side() -> None:
    train, held = held_back(["a", "b"], 0.01, seed=3)
    assert len(train) == len(held) == 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_a_fraction_outside_the_open_interval_is_refused(fraction: float) -> None:
    with pytest.raises(InvalidInput, match="held_back_fraction"):
        held_back(KEYS, fraction, seed=1)


def test_one_query_cannot_be_split() -> None:
    with pytest.raises(InvalidInput, match="at least 2"):
        held_back(["only"], 0.5, seed=1)


def test_folds_cover_every_key_once_with_even_sizes() -> None:
    parts = folds(KEYS, 5, seed=7)
    assert sorted(k for part in parts for k in part) == sorted(KEYS)
    assert {len(part) for part in parts} == {40}
    assert parts == folds(list(reversed(KEYS)), 5, seed=7)


def test_more_folds_than_queries_is_refused() -> None:
    with pytest.raises(InvalidInput, match="folds"):
        folds(["a", "b"], 3, seed=1)
