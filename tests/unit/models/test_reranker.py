from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import ConfigurationError
from rag.models.reranking import Reranker
from tests.fixtures.tiny_models import build_tiny_cross_encoder

PASSAGES = [
    "Berlin had a population of 3,520,031 in 2019.",
    "Berlin is well known for its museums.",
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France.",
    "",
]


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder_path: Path) -> Reranker:
    return Reranker(tiny_cross_encoder_path)


def test_one_float32_score_per_passage(reranker: Reranker) -> None:
    scores = reranker.score("How many people live in Berlin?", PASSAGES)

    assert scores.shape == (len(PASSAGES),)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_scores_equal_direct_cross_encoder(reranker: Reranker, tiny_cross_encoder_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    query = "How many people live in Berlin?"
    direct = CrossEncoder(str(tiny_cross_encoder_path), device="cpu")
    expected = direct.predict([(query, p) for p in PASSAGES], convert_to_numpy=True)

    np.testing.assert_allclose(reranker.score(query, PASSAGES), expected, atol=1e-6)


def test_batch_size_does_not_change_scores(tiny_cross_encoder_path: Path) -> None:
    small_batches = Reranker(tiny_cross_encoder_path, batch_size=2)
    one_batch = Reranker(tiny_cross_encoder_path, batch_size=32)
    query = "museums in Berlin"

    np.testing.assert_allclose(
        small_batches.score(query, PASSAGES), one_batch.score(query, PASSAGES), atol=1e-5
    )


def test_pairs_may_mix_queries(reranker: Reranker) -> None:
    pairs = [("q one", PASSAGES[0]), ("q two", PASSAGES[1]), ("q one", PASSAGES[2])]
    mixed = reranker.score_pairs(pairs)

    np.testing.assert_allclose(mixed[[0, 2]], reranker.score("q one", [PASSAGES[0], PASSAGES[2]]), atol=1e-6)
    np.testing.assert_allclose(mixed[1], reranker.score("q two", [PASSAGES[1]])[0], atol=1e-6)


def test_no_passages_gives_no_scores(reranker: Reranker) -> None:
    assert reranker.score("anything", []).shape == (0,)


def test_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="holds no cross-encoder"):
        Reranker(tmp_path)


def test_classifier_with_several_labels_is_refused(tmp_path: Path) -> None:
    path = build_tiny_cross_encoder(tmp_path / "classifier", num_labels=3)

    with pytest.raises(ConfigurationError, match="exactly one"):
        Reranker(path)
