"""Which labelled queries train and which judge: a held-back share and cross-validation folds.

A query's side is a pure function of the seed and its key (sha256 of ``seed:key``), not of the
order the labels arrived in or of how many there are: a query held back once stays held back as
labels grow, so a model is never judged on a query an earlier version trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from rag.core.errors import InvalidInput


def _position(key: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, key)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_back(keys: Iterable[str], fraction: float, *, seed: int) -> tuple[list[str], list[str]]:
    """(train, held back): each key held back with probability ``fraction``, at least one each
    side when there are two keys or more."""
    if not 0.0 < fraction < 1.0:
        raise InvalidInput(f"must be above 0 and below 1, got {fraction}", field="held_back_fraction")
    ordered = sorted(set(keys), key=lambda k: _position(k, seed))
    if len(ordered) < 2:
        raise InvalidInput(
            f"{len(ordered)} labelled queries: at least 2 are needed (one to train, one to judge)",
            field="labels",
        )
    cut = sum(1 for k in ordered if _position(k, seed) < 1.0 - fraction)
    cut = min(max(cut, 1), len(ordered) - 1)
    return ordered[:cut], ordered[cut:]


def folds(keys: Iterable[str], k: int, *, seed: int) -> list[list[str]]:
    """``k`` disjoint folds covering every key, sizes within one of each other."""
    ordered = sorted(set(keys), key=lambda key: _position(key, seed))
    if not 2 <= k <= len(ordered):
        raise InvalidInput(
            f"needs 2..{len(ordered)} folds for {len(ordered)} queries, got {k}", field="folds"
        )
    return [ordered[i::k] for i in range(k)]
