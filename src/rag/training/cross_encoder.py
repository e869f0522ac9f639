"""Training a cross-encoder reranker: a sentence-transformers ``CrossEncoder`` with one output
(a relevance logit), trained with binary cross-entropy on mined (query, chunk, 0/1) pairs.

The trainer is sentence-transformers' own ``CrossEncoderTrainer`` (Hugging Face's Trainer
underneath: AdamW, linear warm-up and decay, gradient clipping, the GPU and mixed precision when
there is one) rather than a loop of our own. The base model is either the packaged
all-MiniLM-L6-v2 (its encoder, with a fresh one-label head) or a reranker the product trained
before. Training stops at ``max_steps`` or at the time budget, whichever comes first, and logs
its progress every ``log_every`` steps; the result is saved as a plain CrossEncoder folder that
``rag.models.reranking.Reranker`` (and Triton's reranker model) loads.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rag.training.budget import Progress, TrainingParams, TrainingReport, Watch, trainer_arguments
from rag.training.candidates import Pair

log = logging.getLogger(__name__)

__all__ = ["TrainingParams", "TrainingReport", "train_cross_encoder"]


def train_cross_encoder(
    base: Path,
    examples: Sequence[Pair],
    out_dir: Path,
    params: TrainingParams,
    *,
    device: str = "cpu",
    progress: Progress | None = None,
) -> TrainingReport:
    """Train from ``base`` on ``examples`` and save the model in ``out_dir``."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from sentence_transformers.cross_encoder.training_args import CrossEncoderTrainingArguments
    from transformers import set_seed

    say = progress or log.info
    if not examples:
        raise ValueError("no training pairs: the labelled queries retrieved none of their relevant documents")
    set_seed(params.seed)
    model = CrossEncoder(
        str(base), num_labels=1, max_length=params.max_length, device=device, local_files_only=True
    )
    data = Dataset.from_dict(
        {
            "query": [e.query for e in examples],
            "passage": [e.passage for e in examples],
            "label": [e.label for e in examples],
        }
    )
    steps = params.steps_for(len(examples))
    watch = Watch(params, steps, say)

    args = trainer_arguments(CrossEncoderTrainingArguments, params, out_dir, device)
    say(f"training a cross-encoder from {base.name}: {len(examples)} pairs, {steps} steps")
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=BinaryCrossEntropyLoss(model),
        callbacks=[watch.callback()],
    )
    output = trainer.train()
    model.save_pretrained(str(out_dir))
    report = watch.report(out_dir, int(output.global_step))
    say(f"trained {report.steps} steps in {report.seconds:.0f} s; saved in {out_dir}")
    return report
