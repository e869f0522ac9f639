"""The finetune_embedder job with in-memory collaborators: a tiny sentence-transformer really
trains on triplets mined from a fake search, is judged against the serving embedder on
held-back queries, and is registered with its run and the split reembed_index will judge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from rag.core.errors import InvalidInput
from rag.modelops.embedder_training import (
    NEW,
    SERVING,
    TAG_HELD_BACK_FRACTION,
    TAG_RUN,
    TAG_SEED,
    TAG_SERVING_HYBRID_NDCG,
    EmbedderTraining,
    decide,
    train,
)
from rag.modelops.packaging import ModelKind
from rag.training.candidates import Candidate
from tests.fixtures.tiny_models import build_tiny_sentence_transformer
from tests.unit.modelops.test_reranker_training import Runs, Version, _corpus


def _serving(texts: Sequence[str]) -> NDArray[np.float32]:
    """An embedder that ranks nothing: every text the same vector."""
    return np.ones((len(texts), 4), dtype=np.float32)


def test_the_job_fine_tunes_judges_against_the_serving_embedder_and_registers_the_split(
    tmp_path: Path,
) -> None:
    queries, results = _corpus()

    def search(query: str, depth: int) -> Sequence[Candidate]:
        return results[query][:depth]

    registered: list[dict[str, Any]] = []

    def register(kind: ModelKind, path: Path, **kwargs: Any) -> Version:
        assert (path / "modules.json").is_file()  # a sentence-transformers folder
        registered.append({"kind": kind, **kwargs})
        return Version("rag-embedder", "4")

    runs = Runs()
    job = EmbedderTraining(tenant="acme", max_steps=2, batch_size=4, held_back_fraction=0.25, judge_depth=4)
    trained = train(
        job,
        queries,
        search=search,
        runs=runs,
        register=register,
        base=build_tiny_sentence_transformer(tmp_path / "base"),
        serving=_serving,
        work_dir=tmp_path,
    )
    assert trained.version == "4" and trained.metrics["train_steps"] == 2.0
    assert trained.metrics["train_triplets"] > 0
    # The search puts each relevant document 3rd of 4: nDCG@10 1/log2(4) = 0.5 in hybrid order.
    assert trained.metrics[TAG_SERVING_HYBRID_NDCG] == pytest.approx(0.5)
    # The serving embedder gives every candidate the same score: a stable sort keeps that order.
    assert trained.metrics[SERVING] == pytest.approx(0.5)
    assert 0.0 < trained.metrics[NEW] <= 1.0
    assert runs.metrics == trained.metrics and runs.ended == [False]
    assert {"training.log", "split.json"} <= set(runs.artifacts)
    (call,) = registered
    assert call["kind"] is ModelKind.EMBEDDER and call["run_id"] == "run-1"
    assert call["tags"][TAG_RUN] == "run-1"
    assert call["tags"][TAG_HELD_BACK_FRACTION] == "0.25" and call["tags"][TAG_SEED] == "13"


def test_no_triplets_fail_the_run(tmp_path: Path) -> None:
    queries, _ = _corpus()
    runs = Runs()
    with pytest.raises(ValueError, match="no training triplets"):
        train(
            EmbedderTraining(tenant="acme", max_steps=1),
            queries,
            search=lambda query, depth: [Candidate(0, "unlabelled", "nothing relevant")],
            runs=runs,
            register=lambda *a, **k: None,
            base=build_tiny_sentence_transformer(tmp_path / "base"),
            serving=_serving,
            work_dir=tmp_path,
        )
    assert runs.ended == [True]


def test_the_gate_promotes_only_past_the_margin_over_the_serving_embedder() -> None:
    assert decide({NEW: 0.72, SERVING: 0.70}, 0.01).promote
    held = decide({NEW: 0.705, SERVING: 0.70}, 0.01)
    assert not held.promote and "does not beat the serving embedder" in held.reason


@pytest.mark.parametrize(
    "bad", [{"base_model": "latest"}, {"batch_size": 1}, {"judge_depth": 0}, {"promotion_margin": -1}]
)
def test_params_are_checked_once(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        EmbedderTraining(tenant="acme", **bad)
