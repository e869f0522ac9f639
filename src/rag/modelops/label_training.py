"""What the two trainings on relevance labels share (``train_reranker`` and
``finetune_embedder``): their common Params, the MLflow run's protocol, the record of a
trained version, the gate's decision, and the run's journal (log lines, training log and split
as artifacts)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

from rag.core.errors import InvalidInput
from rag.modelops.packaging import CHAMPION
from rag.training.budget import TrainingParams
from rag.training.candidates import CandidateSearch, Labelled, RankedCandidates, mine
from rag.training.splits import held_back

log = logging.getLogger(__name__)

BASE_PACKAGED = "packaged"
_BASE = re.compile(rf"^({BASE_PACKAGED}|{CHAMPION}|[1-9][0-9]{{0,8}})$")
# Version tags both trainings write (and operators read).
TAG_TENANT = "trained_for_tenant"
TAG_RUN = "training_run_id"
TAG_GATE = "promotion_gate"


@dataclass(frozen=True)
class LabelTraining:
    """The Params both DAGs take, checked once; each training adds its own."""

    POSITIVE: ClassVar[tuple[str, ...]] = (
        "epochs",
        "batch_size",
        "negatives_per_query",
        "hard_negative_depth",
    )

    tenant: str
    base_model: str = BASE_PACKAGED  # packaged, champion, or a registered version number
    epochs: int = 1
    max_steps: int = 0
    batch_size: int = 16
    learning_rate: float = 5e-5
    negatives_per_query: int = 4
    hard_negative_depth: int = 30
    held_back_fraction: float = 0.2
    promotion_margin: float = 0.01
    seed: int = 13
    max_length: int = 256
    time_budget_minutes: float = 20.0

    def __post_init__(self) -> None:
        if not _BASE.match(self.base_model):
            raise InvalidInput(
                f"must be {BASE_PACKAGED!r}, {CHAMPION!r} or a version number, got {self.base_model!r}",
                field="base_model",
            )
        for name in self.POSITIVE:
            if getattr(self, name) < 1:
                raise InvalidInput(f"must be at least 1, got {getattr(self, name)}", field=name)
        if self.max_steps < 0 or self.time_budget_minutes < 0 or self.promotion_margin < 0:
            raise InvalidInput("max_steps, time_budget_minutes and promotion_margin must not be negative")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in params.items() if k in fields})

    def training_params(self, *, log_every: int = 10) -> TrainingParams:
        return TrainingParams(
            epochs=self.epochs,
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            max_length=self.max_length,
            seed=self.seed,
            time_budget_s=self.time_budget_minutes * 60,
            log_every=log_every,
        )


@dataclass(frozen=True)
class TrainedModel:
    version: str
    run_id: str
    metrics: dict[str, float]

    def as_xcom(self) -> dict[str, Any]:
        return {"version": self.version, "run_id": self.run_id, "metrics": dict(self.metrics)}


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


class RunLog(Protocol):
    """The training-run calls of :class:`rag.adapters.mlflow_registry.ModelRegistry`."""

    def start_run(self, run_name: str, *, params: Mapping[str, object], tags: Mapping[str, str]) -> str: ...

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], *, step: int = 0) -> None: ...

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None: ...

    def end_run(self, run_id: str, *, failed: bool = False) -> None: ...


@dataclass
class Journal:
    """A training's progress lines: logged as they come, and kept for the run's artifacts."""

    lines: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        log.info("%s", message)
        self.lines.append(message)

    def record(
        self,
        runs: RunLog,
        run_id: str,
        folder: Path,
        metrics: Mapping[str, float],
        split: Mapping[str, list[str]],
    ) -> None:
        """The metrics, the training log and the split (which queries trained, which judged)."""
        runs.log_metrics(run_id, metrics)
        log_file = folder / "training.log"
        log_file.write_text("\n".join(self.lines) + "\n")
        runs.log_artifact(run_id, log_file)
        split_file = folder / "split.json"
        split_file.write_text(json.dumps(dict(split)))
        runs.log_artifact(run_id, split_file)


@dataclass(frozen=True)
class Mined:
    """The labelled queries split and searched: the train side's candidates and the held-back
    side's, in the search's order."""

    train_keys: list[str]
    held_keys: list[str]
    train: list[RankedCandidates]
    held: list[RankedCandidates]

    @property
    def split(self) -> dict[str, list[str]]:
        return {"train": self.train_keys, "held_back": self.held_keys}


def split_and_mine(
    job: LabelTraining, queries: Sequence[Labelled], search: CandidateSearch, *, depth: int, journal: Journal
) -> Mined:
    """Steps 1 and 2 of both trainings: hold back a share of the judged queries (by seed and key),
    then search every one of them to ``depth``."""
    judged = [q for q in queries if any(g > 0 for g in q.grades.values())]
    train_keys, held_keys = held_back([q.key for q in judged], job.held_back_fraction, seed=job.seed)
    journal.say(
        f"{len(judged)} labelled queries of tenant {job.tenant}:"
        f" {len(train_keys)} train, {len(held_keys)} held back"
    )
    lists = mine(
        judged, search, depth=depth, progress=lambda n, total: journal.say(f"mined {n}/{total} queries")
    )
    held = set(held_keys)
    return Mined(
        train_keys,
        held_keys,
        [r for r in lists if r.key not in held],
        [r for r in lists if r.key in held],
    )
