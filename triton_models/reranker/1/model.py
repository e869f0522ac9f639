"""Triton Python-backend adapter for the reranker: (QUERY, PASSAGE) rows -> SCORE rows.

Thin on purpose: request checking (rag.models.tensors) and the model (rag.models.reranking)
are tested without Triton. Requests of one dynamic batch are scored in one model call.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils

# OpenMP threads sleep between requests, as in the embedder (its model.py says why); set before
# torch loads. An OMP_WAIT_POLICY in Triton's environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import rag  # noqa: F401  (installed: the usual case)
except ImportError:  # a source checkout whose package is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from rag.models.reranking import Reranker
from rag.models.tensors import parse_rerank_pairs
from rag.models.triton_backend import answer_in_one_call, input_array, read_arguments


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        model = read_arguments(pb_utils, args, "SCORE")
        self.output_dtype = model.output_dtype
        if model.source.path is None:
            raise pb_utils.TritonModelException(
                "reranker has no MODEL_PATH: no cross-encoder ships with RAG System; register "
                "one (rag models register --kind reranker --path DIR --alias champion) or render "
                "the config with --reranker-model-path DIR (a sentence-transformers CrossEncoder)"
            )
        self.reranker = Reranker(
            model.source.path, device=model.device, model_version=model.source.model_version
        )
        self.reranker.score("warm-up", ["warm-up"])  # the first request should not pay for it
        pb_utils.Logger.log_info(
            f"reranker {self.reranker.model_version} (Triton version {args.get('model_version')}) "
            f"loaded from {model.source.path} on {model.device}"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        return answer_in_one_call(
            pb_utils,
            requests,
            parse=lambda request: parse_rerank_pairs(
                input_array(pb_utils, request, "QUERY"), input_array(pb_utils, request, "PASSAGE")
            ),
            run=lambda rows: (
                self.reranker.score_pairs(rows).astype(self.output_dtype, copy=False).reshape(-1, 1)
            ),
            output_name="SCORE",
        )

    def finalize(self) -> None:
        pb_utils.Logger.log_info("reranker unloaded")
