"""EmbeddingSupport: calibrated support from embedding similarity and word overlap, one embedder
call per grading."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from rag.generation.support import EmbeddingSupport
from tests.unit.fakes import FakeModels
from tests.unit.retrieval.test_service import unit


def test_support_rises_with_similarity_and_overlap_in_one_embedder_call() -> None:
    models = FakeModels()
    models.vectors.update(
        {
            "Statins lower cholesterol.": unit(1.0),
            "Cholesterol falls with statins.": unit(1.0, 0.1),
            "Coffee is drunk worldwide.": unit(0.0, 1.0),
        }
    )
    scorer = EmbeddingSupport(models, cosine_weight=4.0, overlap_weight=1.0, intercept=-3.0)
    pairs = [
        ("Statins lower cholesterol.", "Cholesterol falls with statins."),
        ("Statins lower cholesterol.", "Coffee is drunk worldwide."),
    ]
    support = asyncio.run(scorer.support(pairs))
    cosine = float(unit(1.0) @ unit(1.0, 0.1))
    expected = 1 / (1 + np.exp(-(4.0 * cosine + 1.0 * (2 / 3) - 3.0)))
    assert support[0] == pytest.approx(expected, rel=1e-5)
    assert support[1] == pytest.approx(1 / (1 + np.exp(3.0)), rel=1e-5)  # orthogonal, no shared word
    # Each distinct text embedded once, in one call.
    assert sorted(models.embedded) == sorted(dict.fromkeys(t for pair in pairs for t in pair))
    assert asyncio.run(scorer.support([])).shape == (0,)
