"""MLflow ``pyfunc`` wrappers of the reranker and the generator.

MLflow has no flavor for a sentence-transformers ``CrossEncoder`` (its sentence_transformers
flavor saves bi-encoders only), and its transformers flavor re-serializes a pipeline, which
would turn SmolLM2's 4-bit GGUF file into ~500 MB of float32 tensors and change the digest.
So both are ``pyfunc`` models (saved as models from code: ``mlflow_reranker.py`` and
``mlflow_generator.py``, no pickle) whose weights are an artifact copied verbatim (``weights``):
``mlflow.pyfunc.load_model("models:/rag-reranker@champion")`` scores with the same
:class:`~rag.models.reranking.Reranker` that Triton runs, and the Triton export ships the
same files.

Importing this module imports mlflow; only registration and pyfunc loading need it. Inputs
are typed ``pd.DataFrame``: MLflow then validates them against the logged signature instead
of inferring one from the type hints.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

WEIGHTS_ARTIFACT = "weights"


class RerankerPyfunc(PythonModel):
    """Input: a frame with string columns ``query`` and ``passage``; output: one score per row."""

    def load_context(self, context: Any) -> None:
        from rag.models.reranking import Reranker

        self._reranker = Reranker(context.artifacts[WEIGHTS_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        pairs = list(zip(model_input["query"], model_input["passage"], strict=True))
        return self._reranker.score_pairs([(str(q), str(p)) for q, p in pairs]).tolist()


class GeneratorPyfunc(PythonModel):
    """Input: a frame with a string column ``prompt``; output: one completion per row.

    Parameters ``max_tokens`` and ``temperature`` apply to every row.
    """

    def load_context(self, context: Any) -> None:
        from rag.models.generation import Generator

        self._generator = Generator(context.artifacts[WEIGHTS_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        settings = params or {}
        max_tokens = int(settings.get("max_tokens", 64))
        temperature = float(settings.get("temperature", 0.0))
        return [
            self._generator.generate(str(prompt), max_tokens, temperature=temperature)
            for prompt in model_input["prompt"]
        ]
