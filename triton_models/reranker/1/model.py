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

# Set before torch loads GNU OpenMP: its threads sleep between requests instead of spinning for
# milliseconds after each one. Requests here are short bursts on cores shared with PostgreSQL and
# the API; spinning cost 16 ms of CPU per query (bench.latency, 2 cores) and capped throughput
# under concurrency. The generator keeps the default: its decoding loop runs parallel regions
# back to back, where spinning pays. An OMP_WAIT_POLICY in Triton's environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import rag  # noqa: F401  (installed: the usual case)
except ImportError:  # a source checkout whose package is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from rag.core.errors import InvalidInput
from rag.models.reranking import Reranker
from rag.models.tensors import RowBatch, parse_rerank_pairs
from rag.models.triton_args import instance_device, model_config, model_parameters, weights_source


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return tensor.as_numpy() if tensor is not None else None


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = model_config(args)
        output = pb_utils.get_output_config_by_name(config, "SCORE")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        # A promoted version loads its own weights; version 1 the config's MODEL_PATH.
        source = weights_source(args, model_parameters(config))
        if source.path is None:
            raise pb_utils.TritonModelException(
                "reranker has no MODEL_PATH: no cross-encoder ships with RAG System; register "
                "one (rag models register --kind reranker --path DIR --alias champion) or render "
                "the config with --reranker-model-path DIR (a sentence-transformers CrossEncoder)"
            )
        device = instance_device(args)
        self.reranker = Reranker(source.path, device=device, model_version=source.model_version)
        self.reranker.score("warm-up", ["warm-up"])  # the first request should not pay for it
        pb_utils.Logger.log_info(
            f"reranker {self.reranker.model_version} (Triton version {args.get('model_version')}) "
            f"loaded from {source.path} on {device}"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        batch: RowBatch[tuple[str, str]] = RowBatch()
        for index, request in enumerate(requests):
            if request.is_cancelled():
                responses[index] = _error("request cancelled", pb_utils.TritonError.CANCELLED)
                continue
            try:
                pairs = parse_rerank_pairs(_input(request, "QUERY"), _input(request, "PASSAGE"))
            except InvalidInput as exc:
                responses[index] = _error(str(exc), pb_utils.TritonError.INVALID_ARG)
                continue
            batch.add(index, pairs)
        if batch.rows:
            scores = self.reranker.score_pairs(batch.rows).astype(self.output_dtype, copy=False)
            for index, rows in batch.split(scores.reshape(-1, 1)).items():
                responses[index] = pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SCORE", rows)])
        return responses

    def finalize(self) -> None:
        pb_utils.Logger.log_info("reranker unloaded")
