"""Triton Python-backend adapter for the generator: PROMPT -> a stream of TOKEN pieces.

Decoupled: each text piece is one response, and every stream ends with the final flag,
after the last piece, after an error, and after cancellation. Thin on purpose: request
checking (rag.models.tensors) and decoding (rag.models.generation) are tested without
Triton.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils

try:
    import rag  # noqa: F401  (installed: the usual case)
except ImportError:  # a source checkout whose package is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "src"))

from rag.core.errors import InvalidInput
from rag.models.generation import Generator
from rag.models.tensors import encode_strings, parse_generation_inputs
from rag.models.triton_backend import input_array, read_arguments

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


def _input(request: Any, name: str) -> Any:
    return input_array(pb_utils, request, name)


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        model = read_arguments(pb_utils, args, "TOKEN")
        if not pb_utils.using_decoupled_model_transaction_policy(model.config):
            raise pb_utils.TritonModelException(
                "generator streams tokens: set model_transaction_policy { decoupled: true }"
            )
        self.output_dtype = model.output_dtype
        self.generator = Generator(
            model.source.path,
            device=model.device,
            dtype=model.parameters.get("DTYPE") or "bfloat16",
            cache_dir=model.parameters.get("CACHE_DIR") or None,
            model_version=model.source.model_version,
        )
        self.generator.warm_up()
        pb_utils.Logger.log_info(
            f"generator {self.generator.model_version} (Triton version {args.get('model_version')}) "
            f"loaded from {self.generator.path} "
            f"on {model.device} ({self.generator.dtype}, context {self.generator.context_length})"
        )

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            self._stream(request)
        return None

    def _stream(self, request: Any) -> None:
        sender = request.get_response_sender()
        try:
            inputs = parse_generation_inputs(
                _input(request, "PROMPT"),
                _input(request, "MAX_TOKENS"),
                _input(request, "TEMPERATURE"),
                _input(request, "STOP"),
            )
            pieces = self.generator.stream(
                inputs.prompt,
                inputs.max_tokens,
                inputs.temperature,
                inputs.stop,
                is_cancelled=request.is_cancelled,
            )
            sent = 0
            for piece in pieces:
                sent += 1
                tensor = pb_utils.Tensor("TOKEN", encode_strings([piece]).astype(self.output_dtype))
                sender.send(pb_utils.InferenceResponse(output_tensors=[tensor]))
        except InvalidInput as exc:
            self._finish(sender, str(exc), pb_utils.TritonError.INVALID_ARG)
        except Exception as exc:  # a failed stream ends with an error; the model keeps serving
            pb_utils.Logger.log_error(f"generation failed: {type(exc).__name__}: {exc}")
            self._finish(sender, f"generation failed: {exc}", pb_utils.TritonError.INTERNAL)
        else:
            if request.is_cancelled():
                pb_utils.Logger.log_info(f"stream cancelled by the client after {sent} pieces")
                self._finish(sender, "request cancelled", pb_utils.TritonError.CANCELLED)
            else:
                self._finish(sender)

    @staticmethod
    def _finish(sender: Any, message: str | None = None, code: Any = None) -> None:
        try:
            if message is None:
                sender.send(flags=FINAL)
            else:
                error = pb_utils.TritonError(message, code)
                sender.send(pb_utils.InferenceResponse(error=error), flags=FINAL)
        except Exception as exc:  # the client is gone; nothing more to tell it
            pb_utils.Logger.log_warn(f"could not end the stream: {exc}")

    def finalize(self) -> None:
        pb_utils.Logger.log_info("generator unloaded")
