"""What both trainers share: their parameters, their report, and the Trainer callback that
logs progress and stops at the time budget (sentence-transformers' trainers are Hugging Face's
``Trainer``, so one callback serves the cross-encoder and the embedder)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainingParams:
    epochs: int = 1
    max_steps: int = 0  # 0: as many as the epochs take
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    max_length: int = 256
    seed: int = 13
    time_budget_s: float = 0.0  # 0: no budget
    log_every: int = 10

    def steps_for(self, examples: int) -> int:
        per_epoch = math.ceil(examples / self.batch_size)
        total = per_epoch * self.epochs
        return min(total, self.max_steps) if self.max_steps > 0 else total


@dataclass(frozen=True)
class TrainingReport:
    path: Path
    steps: int
    seconds: float
    final_loss: float | None
    stopped_by_budget: bool


@dataclass
class Watch:
    """Progress every ``log_every`` steps, and the stop at the time budget."""

    params: TrainingParams
    steps: int
    say: Progress
    began: float = field(default_factory=time.monotonic)
    loss: float | None = None
    stopped_by_budget: bool = False

    def callback(self) -> Any:
        from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

        watch = self

        class _Callback(TrainerCallback):
            def on_log(
                self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
            ) -> None:
                logs = kwargs.get("logs") or {}
                if "loss" in logs:
                    watch.loss = float(logs["loss"])
                    elapsed = time.monotonic() - watch.began
                    watch.say(
                        f"step {state.global_step}/{watch.steps}: loss {watch.loss:.4f},"
                        f" {elapsed:.0f} s, {elapsed / max(1, state.global_step):.2f} s/step"
                    )

            def on_step_end(
                self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
            ) -> None:
                budget = watch.params.time_budget_s
                if budget and time.monotonic() - watch.began > budget:
                    watch.stopped_by_budget = True
                    control.should_training_stop = True

        return _Callback()

    def report(self, path: Path, steps: int) -> TrainingReport:
        return TrainingReport(path, steps, time.monotonic() - self.began, self.loss, self.stopped_by_budget)


def trainer_arguments(
    arguments: Callable[..., Any], params: TrainingParams, out_dir: Path, device: str, **extra: Any
) -> Any:
    """``arguments`` (a sentence-transformers ``*TrainingArguments`` class) for ``params``:
    AdamW with linear warm-up and decay, no checkpoints (the caller saves the model), progress
    through :class:`Watch` rather than tqdm, the CPU unless ``device`` names another."""
    return arguments(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=params.epochs,
        max_steps=params.max_steps if params.max_steps > 0 else -1,
        per_device_train_batch_size=params.batch_size,
        learning_rate=params.learning_rate,
        warmup_steps=params.warmup_ratio,  # a float below 1 is a share of the steps (Transformers 5)
        seed=params.seed,
        data_seed=params.seed,
        logging_steps=params.log_every,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        **extra,
    )
