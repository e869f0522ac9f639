"""Fine-tuning the embedder: the sentence-transformers bi-encoder that Triton serves as
``embedder``, trained with MultipleNegativesRankingLoss on mined (query, relevant chunk, hard
negative chunk) triplets.

The loss is sentence-transformers' own: each query must rank its positive above every other
passage of the batch (the other queries' positives and every hard negative), which is why the
batch sampler keeps duplicate texts out of a batch (a duplicate would be a false negative).
The trainer is ``SentenceTransformerTrainer`` (Hugging Face's Trainer: AdamW, warm-up and
decay, the GPU when there is one); training stops at ``max_steps`` or the time budget, and the
result is a plain sentence-transformers folder, which ``rag models register --kind embedder``
packages like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from rag.training.budget import Progress, TrainingParams, TrainingReport, Watch, trainer_arguments
from rag.training.candidates import Triplet

log = logging.getLogger(__name__)


def train_bi_encoder(
    base: Path,
    examples: Sequence[Triplet],
    out_dir: Path,
    params: TrainingParams,
    *,
    device: str = "cpu",
    progress: Progress | None = None,
) -> TrainingReport:
    """Fine-tune the sentence-transformers model at ``base`` on ``examples``; save it in ``out_dir``."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import set_seed

    say = progress or log.info
    if not examples:
        raise ValueError(
            "no training triplets: the labelled queries retrieved none of their relevant documents"
        )
    set_seed(params.seed)
    model = SentenceTransformer(str(base), device=device, local_files_only=True)
    model.max_seq_length = params.max_length
    data = Dataset.from_dict(
        {
            "anchor": [e.query for e in examples],
            "positive": [e.positive for e in examples],
            "negative": [e.negative for e in examples],
        }
    )
    steps = params.steps_for(len(examples))
    watch = Watch(params, steps, say)
    args = trainer_arguments(
        SentenceTransformerTrainingArguments,
        params,
        out_dir,
        device,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )
    say(f"fine-tuning the embedder {base.name}: {len(examples)} triplets, {steps} steps")
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[watch.callback()],
    )
    output = trainer.train()
    model.save(str(out_dir))
    report = watch.report(out_dir, int(output.global_step))
    say(f"trained {report.steps} steps in {report.seconds:.0f} s; saved in {out_dir}")
    return report
