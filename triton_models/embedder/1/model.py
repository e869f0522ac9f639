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

from rag.models.embedding import Embedder
from rag.models.tensors import decode_strings
from rag.models.triton_backend import answer_in_one_call, input_array, read_arguments


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        model = read_arguments(pb_utils, args, "EMBEDDING")
        self.output_dtype = model.output_dtype
        dimension = int(model.output["dims"][-1])
        self.embedder = Embedder(
            model.source.path, device=model.device, model_version=model.source.model_version
        )
        if self.embedder.dimension != dimension:
            raise pb_utils.TritonModelException(
                f"model {self.embedder.path} makes {self.embedder.dimension}-dim embeddings but "
                f"EMBEDDING is configured with {dimension}: render the config with "
                f"--embedding-dim {self.embedder.dimension}"
            )
        self.embedder.encode(["warm-up"])  # the first request should not pay torch's first call
        pb_utils.Logger.log_info(
            f"embedder {self.embedder.model_version} (Triton version {args.get('model_version')}) "
            f"loaded from {self.embedder.path} on {model.device} "
            f"(dim {dimension}, max_seq_length {self.embedder.max_seq_length})"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        return answer_in_one_call(
            pb_utils,
            requests,
            parse=lambda request: decode_strings(input_array(pb_utils, request, "TEXT"), "TEXT"),
            run=lambda rows: self.embedder.encode(rows).astype(self.output_dtype, copy=False),
            output_name="EMBEDDING",
        )

    def finalize(self) -> None:
        pb_utils.Logger.log_info("embedder unloaded")
