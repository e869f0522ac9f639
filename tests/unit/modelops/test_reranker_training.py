"""The train_reranker job with in-memory collaborators: a tiny cross-encoder really trains on
pairs mined from a fake search, is judged on held-back queries and registered with its run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from rag.core.errors import InvalidInput
from rag.modelops.packaging import ModelKind
from rag.modelops.reranker_training import (
    TAG_HELD_BACK_NDCG,
    TAG_RUN,
    RerankerTraining,
    decide,
    train,
)
from rag.training.candidates import Candidate
from tests.fixtures.tiny_models import build_tiny_cross_encoder


@dataclass(frozen=True)
class Query:
    key: str
    text: str
    grades: Mapping[str, int]


@dataclass
class Runs:
    started: list[tuple[str, Mapping[str, object]]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)

    def start_run(self, run_name: str, *, params: Mapping[str, object], tags: Mapping[str, str]) -> str:
        self.started.append((run_name, dict(params)))
        return "run-1"

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], *, step: int = 0) -> None:
        self.metrics |= metrics

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.artifacts.append(path.name)

    def end_run(self, run_id: str, *, failed: bool = False) -> None:
        self.ended.append(failed)


@dataclass(frozen=True)
class Version:
    name: str
    version: str


def _corpus() -> tuple[list[Query], dict[str, list[Candidate]]]:
    """20 queries; query i's relevant document is d<i>, ranked 3rd by the search."""
    queries, results = [], {}
    for i in range(20):
        text = f"what is topic {i}"
        queries.append(Query(f"q{i}", text, {f"d{i}": 1}))
        docs = [f"d{(i + 1) % 20}", f"d{(i + 2) % 20}", f"d{i}", f"d{(i + 3) % 20}"]
        results[text] = [Candidate(n, d, f"passage about {d}") for n, d in enumerate(docs)]
    return queries, results


def test_the_job_trains_judges_on_held_back_queries_only_and_registers_with_its_run(tmp_path: Path) -> None:
    queries, results = _corpus()
    searched: list[str] = []

    def search(query: str, depth: int) -> Sequence[Candidate]:
        searched.append(query)
        return results[query][:depth]

    registered: list[dict[str, Any]] = []

    def register(kind: ModelKind, path: Path, **kwargs: Any) -> Version:
        assert (path / "config.json").is_file()  # a CrossEncoder folder the Reranker loads
        registered.append({"kind": kind, **kwargs})
        return Version("rag-reranker", "7")

    def champion(pairs: Sequence[tuple[str, str]]) -> NDArray[np.float32]:
        return np.zeros(len(pairs), dtype=np.float32)

    runs = Runs()
    job = RerankerTraining(tenant="acme", max_steps=3, batch_size=4, held_back_fraction=0.25, rerank_depth=4)
    trained = train(
        job,
        queries,
        search=search,
        runs=runs,
        register=register,
        base=build_tiny_cross_encoder(tmp_path / "base"),
        champion=champion,
        work_dir=tmp_path,
    )
    assert sorted(searched) == sorted(q.text for q in queries)
    assert trained.version == "7" and trained.run_id == "run-1"
    assert trained.metrics["train_steps"] == 3.0
    held = int(trained.metrics["heldback_queries"])
    assert 1 <= held < 20
    # The search alone puts every relevant document 3rd: MRR 1/3 on whatever was held back.
    assert trained.metrics["heldback_hybrid_mrr_at_10"] == pytest.approx(1 / 3)
    assert "heldback_champion_ndcg_at_10" in trained.metrics
    assert runs.metrics == trained.metrics and runs.ended == [False]
    assert {"training.log", "split.json"} <= set(runs.artifacts)
    assert runs.started[0][1]["tenant"] == "acme"
    (call,) = registered
    assert call["kind"] is ModelKind.RERANKER and call["run_id"] == "run-1"
    assert call["tags"][TAG_RUN] == "run-1"
    assert float(call["tags"][TAG_HELD_BACK_NDCG]) == pytest.approx(
        trained.metrics["heldback_reranked_ndcg_at_10"]
    )


def test_a_failed_training_ends_its_run_as_failed(tmp_path: Path) -> None:
    queries, _ = _corpus()
    runs = Runs()

    def search(query: str, depth: int) -> Sequence[Candidate]:
        return [Candidate(0, "unlabelled", "nothing relevant")]  # no positive pair anywhere

    with pytest.raises(ValueError, match="no training pairs"):
        train(
            RerankerTraining(tenant="acme", max_steps=1),
            queries,
            search=search,
            runs=runs,
            register=lambda *a, **k: None,
            base=build_tiny_cross_encoder(tmp_path / "base"),
            champion=None,
            work_dir=tmp_path,
        )
    assert runs.ended == [True]


def _metrics(new: float, hybrid: float, champion: float | None = None) -> dict[str, float]:
    out = {"heldback_reranked_ndcg_at_10": new, "heldback_hybrid_ndcg_at_10": hybrid}
    return out if champion is None else out | {"heldback_champion_ndcg_at_10": champion}


def test_the_gate_promotes_only_past_the_margin_over_the_better_rival() -> None:
    assert decide(_metrics(0.75, 0.70), 0.01).promote
    assert not decide(_metrics(0.705, 0.70), 0.01).promote
    refused = decide(_metrics(0.75, 0.70, champion=0.745), 0.01)
    assert not refused.promote
    assert "serving champion" in refused.reason
    assert decide(_metrics(0.76, 0.70, champion=0.745), 0.01).promote


@pytest.mark.parametrize(
    ("params", "field_name"),
    [
        ({"base_model": "hub:foo"}, "base_model"),
        ({"epochs": 0}, "epochs"),
        ({"rerank_depth": 0}, "rerank_depth"),
    ],
)
def test_params_are_checked_and_name_the_field(params: dict[str, Any], field_name: str) -> None:
    with pytest.raises(InvalidInput, match=field_name):
        RerankerTraining.from_params({"tenant": "acme", **params})


def test_unknown_params_are_ignored_and_known_ones_typed() -> None:
    job = RerankerTraining.from_params({"tenant": "acme", "base_model": "3", "seed": 5, "other": 1})
    assert job.base_model == "3" and job.seed == 5
