"""Triton Python-backend adapter for the embedder: TEXT rows -> EMBEDDING rows.

Thin on purpose: request checking (rag.models.tensors) and the model (rag.models.embedding)
are tested without Triton. Requests of one dynamic batch are encoded in one model call.
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
from rag.models.embedding import Embedder
from rag.models.tensors import RowBatch, decode_strings
from rag.models.triton_args import instance_device, model_config, model_parameters, weights_source


def _error(message: str, code: Any) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return tensor.as_numpy() if tensor is not None else None


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = model_config(args)
        output = pb_utils.get_output_config_by_name(config, "EMBEDDING")
        self.output_dtype = pb_utils.triton_string_to_numpy(output["data_type"])
        dimension = int(output["dims"][-1])
        # A promoted version loads its own weights; version 1 the config's MODEL_PATH.
        source = weights_source(args, model_parameters(config))
        device = instance_device(args)
        self.embedder = Embedder(source.path, device=device, model_version=source.model_version)
        if self.embedder.dimension != dimension:
            raise pb_utils.TritonModelException(
                f"model {self.embedder.path} makes {self.embedder.dimension}-dim embeddings but "
                f"EMBEDDING is configured with {dimension}: render the config with "
                f"--embedding-dim {self.embedder.dimension}"
            )
        self.embedder.encode(["warm-up"])  # the first request should not pay torch's first call
        pb_utils.Logger.log_info(
            f"embedder {self.embedder.model_version} (Triton version {args.get('model_version')}) "
            f"loaded from {self.embedder.path} on {device} "
            f"(dim {dimension}, max_seq_length {self.embedder.max_seq_length})"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        batch: RowBatch[str] = RowBatch()
        for index, request in enumerate(requests):
            if request.is_cancelled():
                responses[index] = _error("request cancelled", pb_utils.TritonError.CANCELLED)
                continue
            try:
                batch.add(index, decode_strings(_input(request, "TEXT"), "TEXT"))
            except InvalidInput as exc:
                responses[index] = _error(str(exc), pb_utils.TritonError.INVALID_ARG)
        if batch.rows:
            vectors = self.embedder.encode(batch.rows).astype(self.output_dtype, copy=False)
            for index, rows in batch.split(vectors).items():
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("EMBEDDING", rows)]
                )
        return responses

    def finalize(self) -> None:
        pb_utils.Logger.log_info("embedder unloaded")
