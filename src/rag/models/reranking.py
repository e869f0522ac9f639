"""Cross-encoder relevance scores for (query, passage) pairs.

No cross-encoder weights ship offline: the reranker loads any sentence-transformers
``CrossEncoder`` folder that the operator registers (e.g. ms-marco-MiniLM-L-6-v2 saved from
their own cache). Tests drive the same code with a tiny random-weight model
(`build_tiny_cross_encoder` in `tests/fixtures/tiny_models.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rag.core.errors import ConfigurationError
from rag.models import artifacts


class Reranker:
    """Scores passages against a query with a cross-encoder; higher means more relevant.

    Scores are the model's own output for one label (usually a sigmoid in (0, 1)); they
    order passages for one query and are not comparable across models.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_length: int | None = None,
        model_version: str | None = None,
    ) -> None:
        from sentence_transformers import CrossEncoder

        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise ConfigurationError(
                f"reranker path {str(path)!r} holds no cross-encoder (expected config.json); "
                "register one, e.g. a saved cross-encoder/ms-marco-MiniLM-L-6-v2 folder"
            )
        self.path = path
        self.device = artifacts.resolve_device(device)
        self.batch_size = batch_size
        self._model: Any = CrossEncoder(
            str(path), device=self.device, max_length=max_length, local_files_only=True
        )
        if int(self._model.num_labels) != 1:
            raise ConfigurationError(
                f"reranker {str(path)!r} has {self._model.num_labels} output labels; "
                "a reranker needs a cross-encoder with exactly one (a relevance score)"
            )
        # sentence-transformers 6 renamed max_length to max_seq_length.
        length = getattr(self._model, "max_seq_length", None) or self._model.max_length
        self.max_length: int = int(length)
        self.model_version: str = model_version or artifacts.model_version(path)

    def score(self, query: str, passages: Sequence[str]) -> NDArray[np.float32]:
        """One score per passage, in the order given."""
        return self.score_pairs([(query, passage) for passage in passages])

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> NDArray[np.float32]:
        """One score per (query, passage) pair; pairs may mix queries (a Triton batch does)."""
        if not pairs:
            return np.empty((0,), dtype=np.float32)
        scores = self._model.predict(
            list(pairs),
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(scores, dtype=np.float32).reshape(len(pairs))
